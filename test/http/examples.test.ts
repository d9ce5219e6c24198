// The shipped examples work as documented: examples/webapp (an HTML form that
// posts back to itself) and examples/rest-api (a JSON REST API, fetch handler).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, call, deploy, startServer, type TestServer } from '../helpers/server.js';

describe('examples: webapp and rest-api', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ tier: 'process' });
    await deploy(s, path.join(ROOT, 'examples', 'webapp'));
    await deploy(s, path.join(ROOT, 'examples', 'rest-api'));
  });
  after(async () => {
    await s.stop();
  });

  test('webapp: a page with a form, the post back greets and sets a cookie, the cookie is remembered', async () => {
    const page = await call(`${s.url}/run/webapp`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /text\/html/);
    assert.match(page.text, /<form method="post" action="\/run\/webapp">/);
    const posted = await fetch(`${s.url}/run/webapp`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=Ada+%3Cb%3E' });
    assert.equal(posted.status, 200);
    const html = await posted.text();
    assert.match(html, /Hello, Ada &#60;b&#62;!/);
    const cookie = posted.headers.getSetCookie()[0]!;
    assert.match(cookie, /^name=Ada%20%3Cb%3E; Path=\/run\/webapp; HttpOnly/);
    const back = await call(`${s.url}/run/webapp`, { headers: { cookie: cookie.split(';')[0]! } });
    assert.match(back.text, /Welcome back, Ada &#60;b&#62;/);
    assert.equal((await call(`${s.url}/run/webapp`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=' })).status, 400);
    assert.equal((await call(`${s.url}/run/webapp/elsewhere`)).status, 404);
  });

  test('rest-api: create, list, read, update, delete, and errors', async () => {
    const api = `${s.url}/run/rest-api`;
    const created = await call(`${api}/todos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'write docs' }) });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(created.body, { id: 1, title: 'write docs', done: false });
    assert.equal(created.headers.get('location'), '/run/rest-api/todos/1');
    assert.deepEqual((await call(`${api}/todos`)).body, [{ id: 1, title: 'write docs', done: false }]);
    const patched = await call(`${api}/todos/1`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"done":true}' });
    assert.deepEqual(patched.body, { id: 1, title: 'write docs', done: true });
    assert.equal((await call(`${api}/todos/1`, { method: 'DELETE' })).status, 204);
    assert.equal((await call(`${api}/todos/1`)).status, 404);
    assert.equal((await call(`${api}/todos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"title":""}' })).status, 400);
    assert.equal((await call(`${api}/todos`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })).status, 415);
    assert.equal((await call(`${api}/nope`)).status, 404);
    const pre = await fetch(`${api}/todos`, { method: 'OPTIONS', headers: { origin: 'https://any.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  });
});
