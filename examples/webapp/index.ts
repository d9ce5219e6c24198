// A small web app in request mode: GET serves an HTML page with a form, the
// form posts back to the same URL, and the answer greets the visitor and
// remembers the name in a cookie. Deploy: lamina deploy examples/webapp,
// then open http://127.0.0.1:5000/run/webapp in a browser.

interface UrlEvent {
  rawPath: string;
  headers: Record<string, string>;
  cookies?: string[];
  requestContext: { http: { method: string } };
  body?: string;
  isBase64Encoded: boolean;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, inner: string) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}input,button{font:inherit;padding:.3rem .6rem}</style>
</head><body><h1>${escape(title)}</h1>${inner}
<form method="post" action="/run/webapp">
  <label>Your name <input name="name" required maxlength="60" autofocus></label>
  <button>Say hello</button>
</form></body></html>`;
}

function html(statusCode: number, body: string, cookies: string[] = []) {
  return { statusCode, headers: { 'content-type': 'text/html; charset=utf-8' }, cookies, body };
}

export async function handler(event: UrlEvent) {
  const method = event.requestContext.http.method;
  if (event.rawPath !== '/') return html(404, page('Not found', `<p>Nothing at ${escape(event.rawPath)}.</p>`));
  if (method === 'POST') {
    const raw = event.isBase64Encoded ? atob(event.body ?? '') : (event.body ?? '');
    const name = (new URLSearchParams(raw).get('name') ?? '').trim().slice(0, 60);
    if (!name) return html(400, page('Hello?', '<p>Please type a name.</p>'));
    return html(200, page(`Hello, ${name}!`, '<p>Nice to meet you. Lamina will remember you in this browser.</p>'), [
      `name=${encodeURIComponent(name)}; Path=/run/webapp; HttpOnly; SameSite=Lax; Max-Age=86400`,
    ]);
  }
  const remembered = event.cookies?.find((c) => c.startsWith('name='))?.slice(5);
  const greeting = remembered ? `<p>Welcome back, ${escape(decodeURIComponent(remembered))}.</p>` : '<p>Who are you?</p>';
  return html(200, page('Lamina web app', greeting));
}
