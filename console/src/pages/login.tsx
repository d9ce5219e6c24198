// The login form: the admin token is checked against the API, then kept in this tab only.
import { useState } from 'preact/hooks';
import { api, setToken } from '../api.js';

export function Login() {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api('/functions', { token: value.trim() });
      setToken(value.trim());
    } catch (err) {
      setError((err as Error & { status?: number }).status === 401 ? 'That token was refused.' : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>Lamina console</h1>
      <label>
        Admin token
        <input type="password" name="token" autocomplete="current-password" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} required />
      </label>
      <button type="submit" disabled={busy}>
        Log in
      </button>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class="hint">The token is in the data dir's <code>token</code> file (or LAMINA_TOKEN). It stays in this tab only.</p>
    </form>
  );
}
