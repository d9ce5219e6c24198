// The Python runtime's HTTP modes (request, wsgi, asgi), driven through the
// worker's ChildRuntimeSandbox with invoke frames carrying the `http` field, as
// the gateway sends them. The apps are dependency-free look-alikes of
// OpenLambda's Flask and FastAPI test lambdas.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ChildRuntimeSandbox } from '../../src/sandbox/child-runtime.js';
import { placeCodeFiles } from '../../src/sandbox/code.js';
import type { HttpFrame, LoadSpec } from '../../src/sandbox/types.js';
import { runtimeFile } from '../../src/util/paths.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'lamina-pyhttp-'));
const open: ChildRuntimeSandbox[] = [];
after(async () => {
  await Promise.all(open.map((s) => s.destroy()));
  rmSync(work, { recursive: true, force: true });
});

async function start(source: string, handler: string): Promise<ChildRuntimeSandbox> {
  const src = mkdtempSync(path.join(work, 'src-'));
  writeFileSync(path.join(src, 'f.py'), source);
  const codeDir = mkdtempSync(path.join(work, 'code-'));
  const sb = new ChildRuntimeSandbox('py-http', 'process', { runtime: 'python', memoryMb: 128, network: false }, {
    placeCode: async (spec) => {
      await placeCodeFiles(spec.codeDir, codeDir);
      return path.join(codeDir, spec.entry);
    },
    memory: async () => ({ current: 0, peak: 0 }),
    cleanup: async () => undefined,
  });
  open.push(sb);
  await sb.start({ command: '/usr/bin/python3', args: ['-I', runtimeFile('python')], env: {} });
  const spec: LoadSpec = { functionName: 'web', functionVersion: 1, codeDir: src, entry: 'f.py', handler, env: {}, memoryMb: 128, timeoutMs: 5000, network: false };
  await sb.load(spec);
  return sb;
}

interface Req {
  method?: string;
  path?: string;
  query?: string;
  headers?: Record<string, string>;
  cookies?: string[];
  body?: Buffer | string;
}

/** The function-URL 2.0 event the worker builds (http-wire.md). */
function event(r: Req): Record<string, unknown> {
  const rawPath = r.path ?? '/';
  const e: Record<string, unknown> = {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: r.query ?? '',
    headers: { host: '127.0.0.1:5000', 'user-agent': 'test', ...(r.headers ?? {}) },
    requestContext: {
      accountId: 'lamina',
      apiId: 'web',
      domainName: '127.0.0.1',
      http: { method: r.method ?? 'GET', path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: 'r1',
      routeKey: '$default',
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    isBase64Encoded: false,
  };
  if (r.query) e.queryStringParameters = Object.fromEntries(new URLSearchParams(r.query));
  if (r.cookies) e.cookies = r.cookies;
  if (Buffer.isBuffer(r.body)) {
    e.body = r.body.toString('base64');
    e.isBase64Encoded = true;
  } else if (r.body !== undefined) e.body = r.body;
  return e;
}

function call(sb: ChildRuntimeSandbox, mode: HttpFrame['mode'], r: Req = {}) {
  const p = r.path ?? '/';
  const http: HttpFrame = { mode, url: `http://127.0.0.1:5000/run/web${p === '/' ? '' : p}${r.query ? `?${r.query}` : ''}`, basePath: '/run/web' };
  return sb.invoke({ requestId: `r${Math.random()}`, event: event(r), http, deadlineMs: Date.now() + 5000, coldStart: false });
}

type Resp = { statusCode: number; headers: Record<string, string>; cookies: string[]; body: string; isBase64Encoded: boolean };
const bodyOf = (v: Resp): Buffer => Buffer.from(v.body, v.isBase64Encoded ? 'base64' : 'utf8');

// A tiny Flask look-alike: routes by PATH_INFO, Response objects, error handlers, request.base_url.
const MINI_FLASK = `
class Response:
    def __init__(self, body, status=200, headers=None, mimetype="text/html"):
        self.body = body.encode() if isinstance(body, str) else body
        self.status = status
        self.headers = dict(headers or {})
        self.headers.setdefault("Content-Type", mimetype + "; charset=utf-8")

class Request:
    def __init__(self, environ):
        self.environ = environ
        host = environ.get("HTTP_HOST") or environ["SERVER_NAME"]
        self.url_root = environ["wsgi.url_scheme"] + "://" + host + environ["SCRIPT_NAME"] + "/"
        self.base_url = self.url_root.rstrip("/") + environ["PATH_INFO"]
        self.method = environ["REQUEST_METHOD"]
        self.args = dict(p.split("=", 1) for p in environ["QUERY_STRING"].split("&") if "=" in p)
        n = int(environ.get("CONTENT_LENGTH") or 0)
        self.data = environ["wsgi.input"].read(n)

class NotFound(Exception):
    code = 404
    def __str__(self):
        return "404 Not Found: The requested URL was not found on the server."

class Flask:
    def __init__(self, name):
        self.routes = {}
        self.handlers = {}
    def route(self, path, methods=("GET",)):
        def deco(fn):
            for m in methods:
                self.routes[(m, path)] = fn
            return fn
        return deco
    def register_error_handler(self, code, fn):
        self.handlers[code] = fn
    def __call__(self, environ, start_response):
        global request
        request = Request(environ)
        fn = self.routes.get((request.method, environ["PATH_INFO"]))
        out = fn() if fn else self.handlers[404](NotFound())
        if isinstance(out, tuple):
            out = Response(out[0], status=out[1])
        elif not isinstance(out, Response):
            out = Response(out)
        reasons = {200: "OK", 404: "NOT FOUND", 418: "I'M A TEAPOT"}
        start_response(f"{out.status} {reasons.get(out.status, 'X')}", list(out.headers.items()))
        return [out.body]
`;

test("an OpenLambda Flask-style app (module-level app, Response with status 418 and a header, a 404 handler)", async () => {
  const sb = await start(`${MINI_FLASK}
def page_not_found(e):
    return f"{e}, {request.base_url}, {request.url_root}\\n", 404

app = Flask("hi")
app.register_error_handler(404, page_not_found)

@app.route("/")
def hi():
    return Response("hi\\n", status=418, headers={"A": "B"})

@app.route("/echo", methods=["POST"])
def echo():
    return Response(request.data, headers={"X-Method": request.method, "X-Q": request.args.get("q", "")}, mimetype="application/octet-stream")
`, 'app');
  const r = await call(sb, 'wsgi');
  assert.equal(r.ok, true, JSON.stringify(r.error));
  const v = r.value as Resp;
  assert.equal(v.statusCode, 418);
  assert.equal(v.headers.a, 'B');
  assert.equal(v.body, 'hi\n');
  assert.equal(v.isBase64Encoded, false);

  const nf = (await call(sb, 'wsgi', { path: '/nope' })).value as Resp;
  assert.equal(nf.statusCode, 404);
  assert.equal(nf.body, '404 Not Found: The requested URL was not found on the server., http://127.0.0.1:5000/run/web/nope, http://127.0.0.1:5000/run/web/\n');

  // A 1 MB binary body goes through intact both ways.
  const blob = randomBytes(1024 * 1024);
  const echo = await call(sb, 'wsgi', { method: 'POST', path: '/echo', query: 'q=1', body: blob, headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(echo.ok, true, JSON.stringify(echo.error));
  const ev = echo.value as Resp;
  assert.equal(ev.isBase64Encoded, true);
  assert.equal(createHash('sha256').update(bodyOf(ev)).digest('hex'), createHash('sha256').update(blob).digest('hex'));
  assert.equal(ev.headers['x-method'], 'POST');
  assert.equal(ev.headers['x-q'], '1');
});

test('a bare WSGI callable: environ, two Set-Cookie headers, joined repeated headers, HEAD without a body', async () => {
  const sb = await start(`
import json
def app(environ, start_response):
    seen = {k: environ[k] for k in ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "HTTP_X_WHO", "HTTP_COOKIE", "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "wsgi.url_scheme") if k in environ}
    seen["body"] = environ["wsgi.input"].read().decode()
    start_response("201 Created", [("Content-Type", "application/json"), ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; HttpOnly"), ("X-Multi", "1"), ("x-multi", "2")])
    return [json.dumps(seen).encode()]
`, 'app');
  const r = await call(sb, 'wsgi', { method: 'PUT', path: '/a%20b/c', query: 'x=1&y=2', headers: { 'content-type': 'text/plain', 'x-who': 'me' }, cookies: ['s=1', 't=2'], body: 'héllo' });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  const v = r.value as Resp;
  assert.equal(v.statusCode, 201);
  assert.deepEqual(v.cookies, ['a=1; Path=/', 'b=2; HttpOnly']);
  assert.equal(v.headers['x-multi'], '1, 2');
  assert.equal(v.headers['set-cookie'], undefined);
  assert.deepEqual(JSON.parse(v.body), {
    REQUEST_METHOD: 'PUT',
    SCRIPT_NAME: '/run/web',
    PATH_INFO: '/a b/c',
    QUERY_STRING: 'x=1&y=2',
    CONTENT_TYPE: 'text/plain',
    HTTP_X_WHO: 'me',
    HTTP_COOKIE: 's=1; t=2',
    SERVER_NAME: '127.0.0.1',
    SERVER_PORT: '5000',
    REMOTE_ADDR: '127.0.0.1',
    'wsgi.url_scheme': 'http',
    body: 'héllo',
  });
  const head = (await call(sb, 'wsgi', { method: 'HEAD' })).value as Resp;
  assert.equal(head.statusCode, 201);
  assert.equal(head.body, '');
});

// A tiny FastAPI look-alike: an ASGI app object with decorators returning dicts as JSON.
const MINI_FASTAPI = `
import json
class FastAPI:
    def __init__(self):
        self.routes = {}
    def get(self, path):
        def deco(fn):
            self.routes[("GET", path)] = fn
            return fn
        return deco
    def post(self, path):
        def deco(fn):
            self.routes[("POST", path)] = fn
            return fn
        return deco
    async def __call__(self, scope, receive, send):
        assert scope["type"] == "http"
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        fn = self.routes.get((scope["method"], scope["path"]))
        if fn is None:
            status, out = 404, {"detail": "Not Found"}
        else:
            status, out = 200, (await fn(scope, body))
        data = json.dumps(out).encode()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data[:3], "more_body": True})
        await send({"type": "http.response.body", "body": data[3:]})
`;

test('an OpenLambda FastAPI-style app (async app object, JSON routes, a 404) and the scope it sees', async () => {
  const sb = await start(`${MINI_FASTAPI}
app = FastAPI()

@app.get("/")
async def root(scope, body):
    return {"message": "hello", "root_path": scope["root_path"], "query": scope["query_string"].decode(), "headers": {k.decode(): v.decode() for k, v in scope["headers"] if k == b"x-who"}}

@app.post("/items")
async def items(scope, body):
    return {"got": json.loads(body), "raw_path": scope["raw_path"].decode(), "client": scope["client"][0]}
`, 'app');
  const r = await call(sb, 'asgi', { query: 'a=1', headers: { 'x-who': 'you' } });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  const v = r.value as Resp;
  assert.equal(v.statusCode, 200);
  assert.equal(v.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(v.body), { message: 'hello', root_path: '/run/web', query: 'a=1', headers: { 'x-who': 'you' } });
  const p = (await call(sb, 'asgi', { method: 'POST', path: '/items', body: '{"n": 5}', headers: { 'content-type': 'application/json' } })).value as Resp;
  assert.deepEqual(JSON.parse(p.body), { got: { n: 5 }, raw_path: '/items', client: '127.0.0.1' });
  assert.equal(((await call(sb, 'asgi', { path: '/missing' })).value as Resp).statusCode, 404);
});

test('a bare ASGI callable with a binary body and cookies', async () => {
  const sb = await start(`
async def app(scope, receive, send):
    msg = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"set-cookie", b"x=1"), (b"set-cookie", b"y=2"), (b"content-type", b"image/png")]})
    await send({"type": "http.response.body", "body": bytes(reversed(msg["body"]))})
`, 'app');
  const blob = randomBytes(300_000);
  const r = await call(sb, 'asgi', { method: 'POST', body: blob });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  const v = r.value as Resp;
  assert.deepEqual(v.cookies, ['x=1', 'y=2']);
  assert.equal(v.isBase64Encoded, true);
  assert.deepEqual(bodyOf(v), Buffer.from(blob).reverse());
});

test('request mode: the handler gets the 2.0 event and its value goes back as is', async () => {
  const sb = await start(`
def f(event):
    return {"statusCode": 302, "headers": {"location": "/x"}, "seen": [event["version"], event["rawPath"], event["requestContext"]["http"]["method"], event.get("queryStringParameters")]}
`, 'f');
  const r = await call(sb, 'request', { path: '/p', query: 'k=v', method: 'DELETE' });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  assert.deepEqual(r.value, { statusCode: 302, headers: { location: '/x' }, seen: ['2.0', '/p', 'DELETE', { k: 'v' }] });
});

test('InvalidResponse: no start_response, no http.response.start, a bad status, a str body; errors stay HandlerError; the runtime keeps serving', async () => {
  const sb = await start(`
def app(environ, start_response):
    what = environ["PATH_INFO"]
    if what == "/nostart":
        return [b"x"]
    if what == "/badstatus":
        start_response("abc", [])
        return []
    if what == "/str":
        start_response("200 OK", [])
        return ["text"]
    if what == "/inject":
        start_response("200 OK", [("X-A", "1\\r\\nSet-Cookie: evil=1")])
        return []
    if what == "/raise":
        raise KeyError("boom")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fine"]

`, 'app');
  const expectInvalid = async (mode: HttpFrame['mode'], p: string, re: RegExp) => {
    const r = await call(sb, mode, { path: p });
    assert.equal(r.ok, false, p);
    assert.equal(r.error?.type, 'InvalidResponse', `${p}: ${JSON.stringify(r.error)}`);
    assert.match(r.error!.message, re);
  };
  await expectInvalid('wsgi', '/nostart', /without calling start_response/);
  await expectInvalid('wsgi', '/badstatus', /3-digit code/);
  await expectInvalid('wsgi', '/str', /yielded a str/);
  await expectInvalid('wsgi', '/inject', /line breaks/);
  const boom = await call(sb, 'wsgi', { path: '/raise' });
  assert.equal(boom.error?.type, 'HandlerError');
  assert.match(boom.error!.stack ?? '', /KeyError: 'boom'/);
  assert.equal(((await call(sb, 'wsgi')).value as Resp).body, 'fine');
  assert.equal(sb.alive, true);

  const asgi = await start(`
async def app(scope, receive, send):
    if scope["path"] == "/status":
        await send({"type": "http.response.start", "status": 99})
        await send({"type": "http.response.body", "body": b""})
    elif scope["path"] == "/partial":
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
    elif scope["path"] == "/body-first":
        await send({"type": "http.response.body", "body": b"a"})
    return None
`, 'app');
  const expectAsgi = async (p: string, re: RegExp) => {
    const r = await asgi.invoke({ requestId: `r${Math.random()}`, event: event({ path: p }), http: { mode: 'asgi', url: `http://h/run/web${p}`, basePath: '/run/web' }, deadlineMs: Date.now() + 5000, coldStart: false });
    assert.equal(r.error?.type, 'InvalidResponse', `${p}: ${JSON.stringify(r)}`);
    assert.match(r.error!.message, re);
  };
  await expectAsgi('/', /without sending http\.response\.start/);
  await expectAsgi('/status', /status 99 is not an integer between 100 and 599/);
  await expectAsgi('/partial', /before finishing its body/);
  await expectAsgi('/body-first', /before http\.response\.start/);
  assert.equal(asgi.alive, true);
});

test('ASGI lifespan: startup runs once before the first request, its state reaches every request, and all calls share one loop', async () => {
  const sb = await start(`
import asyncio, contextlib
calls = {"startup": 0}

@contextlib.asynccontextmanager
async def lifespan_ctx(app):
    calls["startup"] += 1
    yield {"db": "connected", "loop": id(asyncio.get_running_loop())}

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        async with lifespan_ctx(app) as state:
            scope["state"].update(state)
            msg = await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown never comes
        return
    body = ("%s %s %s %s" % (scope["state"]["db"], calls["startup"], scope["state"]["loop"] == id(asyncio.get_running_loop()), scope["path"])).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
`, 'app');
  for (const p of ['/a', '/b']) {
    const r = await call(sb, 'asgi', { path: p });
    assert.equal(r.ok, true, JSON.stringify(r.error));
    assert.equal((r.value as Resp).body, `connected 1 True ${p}`);
  }
});

test('ASGI lifespan: a failed startup fails the call with its message', async () => {
  const sb = await start(`
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no database"})
        return
`, 'app');
  const r = await call(sb, 'asgi');
  assert.equal(r.ok, false);
  assert.equal(r.error?.type, 'HandlerError');
  assert.match(r.error!.message, /startup failed: no database/);
});
