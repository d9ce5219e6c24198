// The Lamina console: a token login, then pages picked by the URL's hash.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { getToken, setToken, streamEvents } from './api.js';
import { dispatch } from './live.js';
import { Login } from './pages/login.js';
import { Functions } from './pages/functions.js';
import { FunctionPage } from './pages/function.js';
import { Bill } from './pages/bill.js';
import { Queue } from './pages/queue.js';
import { Workers } from './pages/workers.js';
import './style.css';

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function useToken(): string | null {
  const [token, set] = useState(getToken());
  useEffect(() => {
    const on = () => set(getToken());
    window.addEventListener('lamina-auth', on);
    return () => window.removeEventListener('lamina-auth', on);
  }, []);
  return token;
}

function Shell() {
  const hash = useHash();
  const [connected, setConnected] = useState(false);
  useEffect(() => {
    const stop = new AbortController();
    void streamEvents(dispatch, setConnected, stop.signal);
    return () => stop.abort();
  }, []);
  const route = hash.replace(/^#\/?/, '');
  const fn = /^functions\/(.+)$/.exec(route);
  let page;
  if (fn) page = <FunctionPage name={decodeURIComponent(fn[1]!)} />;
  else if (route === 'bill') page = <Bill />;
  else if (route === 'queue') page = <Queue />;
  else if (route === 'workers') page = <Workers />;
  else page = <Functions />;
  const tab = (href: string, label: string, active: boolean) => (
    <a href={href} class={active ? 'active' : ''}>
      {label}
    </a>
  );
  return (
    <>
      <header>
        <strong>Lamina</strong>
        <nav>
          {tab('#/', 'Functions', !route || !!fn)}
          {tab('#/bill', 'Bill', route === 'bill')}
          {tab('#/queue', 'Queue & schedules', route === 'queue')}
          {tab('#/workers', 'Workers', route === 'workers')}
        </nav>
        <span class={`live ${connected ? 'on' : 'off'}`} title="live updates" data-testid="live">
          {connected ? 'live' : 'offline'}
        </span>
        <button type="button" onClick={() => setToken(null)}>
          Log out
        </button>
      </header>
      <main>{page}</main>
    </>
  );
}

function App() {
  const token = useToken();
  return token ? <Shell /> : <Login />;
}

render(<App />, document.getElementById('app')!);
