"""Lamina's Python runtime: runs inside a sandbox and speaks the worker protocol
(docs/runtime-protocol.md) on fd 3. Standard library only.

Handlers: OpenLambda's `def f(event)` or Lambda's `def handler(event, context)`;
the number of parameters decides which is called. HTTP functions (the invoke
frame's `http` field): mode "request" calls the handler with the function-URL
2.0 event and returns its value as is; modes "wsgi" and "asgi" serve the WSGI or
ASGI application `handler` names (e.g. a Flask or FastAPI `app`) and answer a
response object (docs/runtime-protocol.md). An ASGI app gets one event loop for
its life, and its lifespan startup runs before its first request.
"""
import asyncio
import base64
import contextvars
import io
import importlib.util
import inspect
import json
import os
import socket
import sys
import threading
import time
import traceback
import urllib.parse

MAX_RESULT_BYTES = 6 * 1024 * 1024
MAX_LOG_BYTES = 64 * 1024

channel = socket.socket(fileno=3)
reader = channel.makefile("rb")
write_lock = threading.Lock()
current_call = contextvars.ContextVar("current_call", default=None)
handler = None
handler_arity = 2
function = {}


def send(frame):
    data = (json.dumps(frame, separators=(",", ":")) + "\n").encode("utf-8")
    with write_lock:
        channel.sendall(data)


# Error texts are capped, so a huge message cannot push a frame past the worker's frame cap.
MAX_ERROR_TEXT = 64 * 1024


def error_info(exc, kind="HandlerError"):
    return {
        "type": kind,
        "message": (str(exc) or type(exc).__name__)[:MAX_ERROR_TEXT],
        "stack": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-MAX_ERROR_TEXT:],
    }


class CallOutput:
    """Routes print() to the call that printed, so logs are per invocation."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        if not text:
            return 0
        call = current_call.get()
        data = text
        if call is not None:
            room = MAX_LOG_BYTES - call["log_bytes"]
            if room <= 0:
                return len(text)
            if len(data) > room:
                data = data[:room] + "\n[lamina: log truncated]\n"
            call["log_bytes"] += len(data)
        send({"t": "log", "id": call["id"] if call else None, "stream": self.stream, "data": data})
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


class Context:
    def __init__(self, c):
        self.requestId = self.request_id = c["requestId"]
        self.functionName = self.function_name = c["functionName"]
        self.functionVersion = self.function_version = c["functionVersion"]
        self.memoryLimitMb = self.memory_limit_mb = c["memoryLimitMb"]
        self.deadlineMs = self.deadline_ms = c["deadlineMs"]
        self.coldStart = self.cold_start = c["coldStart"]

    def get_remaining_time_in_millis(self):
        return max(0, int(self.deadlineMs - time.time() * 1000))

    getRemainingTimeInMillis = get_remaining_time_in_millis


class InvalidResponse(Exception):
    """The application's answer cannot be turned into an HTTP response."""


def event_body(event):
    body = event.get("body")
    if body is None or body == "":
        return b""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")


def request_parts(event, http):
    """What WSGI and ASGI both need from the 2.0 event and the frame's `http` field."""
    url = urllib.parse.urlsplit(http.get("url") or "http://localhost/")
    ctx_http = (event.get("requestContext") or {}).get("http") or {}
    raw_path = event.get("rawPath") or "/"
    headers = dict(event.get("headers") or {})
    if "cookie" not in headers and event.get("cookies"):
        headers["cookie"] = "; ".join(event["cookies"])
    port = url.port or (443 if url.scheme == "https" else 80)
    return {
        "method": (ctx_http.get("method") or "GET").upper(),
        "scheme": url.scheme or "http",
        "host": url.hostname or "localhost",
        "port": port,
        "root": http.get("basePath") or "",
        "raw_path": raw_path,
        # WSGI and ASGI paths are percent-decoded.
        "path": urllib.parse.unquote_to_bytes(raw_path),
        "query": event.get("rawQueryString") or "",
        "headers": headers,
        "protocol": ctx_http.get("protocol") or "HTTP/1.1",
        "source_ip": ctx_http.get("sourceIp") or "",
        "body": event_body(event),
    }


def response_object(status, header_pairs, body):
    """The wire contract's response: headers joined with ", " (Set-Cookie apart, in cookies); text or base64 body."""
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise InvalidResponse(f"the status {status!r} is not an integer between 100 and 599")
    headers = {}
    cookies = []
    for name, value in header_pairs:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidResponse(f"the header {name!r}: {value!r} is not a pair of strings")
        if not name or any(c in name for c in "\r\n:\0 ") or any(c in value for c in "\r\n\0"):
            raise InvalidResponse(f"the header {name!r}: {value!r} holds a character headers cannot carry (line breaks, NUL; or ':' and spaces in the name)")
        key = name.lower()
        if key == "set-cookie":
            cookies.append(value)
        elif key in headers:
            headers[key] += ", " + value
        else:
            headers[key] = value
    try:
        text, b64 = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, b64 = base64.b64encode(body).decode("ascii"), True
    return {"statusCode": status, "headers": headers, "cookies": cookies, "body": text, "isBase64Encoded": b64}


def parse_status(status):
    if not isinstance(status, str):
        raise InvalidResponse(f"start_response got the status {status!r}; it must be a string such as \"200 OK\"")
    code = status.split(" ", 1)[0]
    if not code.isdigit():
        raise InvalidResponse(f"start_response got the status {status!r}; it must start with a 3-digit code")
    return int(code)


def serve_wsgi(app, event, http):
    r = request_parts(event, http)
    environ = {
        "REQUEST_METHOD": r["method"],
        "SCRIPT_NAME": r["root"],
        "PATH_INFO": r["path"].decode("latin-1"),
        "QUERY_STRING": r["query"],
        "SERVER_NAME": r["host"],
        "SERVER_PORT": str(r["port"]),
        "SERVER_PROTOCOL": r["protocol"],
        "REMOTE_ADDR": r["source_ip"],
        "CONTENT_LENGTH": str(len(r["body"])) if r["body"] else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": r["scheme"],
        "wsgi.input": io.BytesIO(r["body"]),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in r["headers"].items():
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif key != "CONTENT_LENGTH":
            environ["HTTP_" + key] = value
    started = {}
    chunks = []

    def start_response(status, headers, exc_info=None):
        if exc_info and started.get("sent"):
            raise exc_info[1].with_traceback(exc_info[2])
        started["status"] = parse_status(status)
        if not isinstance(headers, list):
            raise InvalidResponse(f"start_response got headers of type {type(headers).__name__}; they must be a list of (name, value) pairs")
        started["headers"] = headers
        return write

    def write(data):
        if "status" not in started:
            raise InvalidResponse("the application wrote a body before calling start_response")
        started["sent"] = True
        chunks.append(bytes(data))

    result = app(environ, start_response)
    try:
        for chunk in result:
            if not isinstance(chunk, (bytes, bytearray)):
                raise InvalidResponse(f"the application yielded a {type(chunk).__name__}; a WSGI body is bytes")
            if chunk:
                started["sent"] = True
                chunks.append(bytes(chunk))
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if "status" not in started:
        raise InvalidResponse("the WSGI application returned without calling start_response")
    body = b"" if r["method"] == "HEAD" else b"".join(chunks)
    return response_object(started["status"], started["headers"], body)


asgi_lock = threading.Lock()
asgi_state = {"loop": None, "state": {}}


async def asgi_lifespan(app, state):
    """Runs the app's lifespan startup (FastAPI/Starlette startup handlers); an app without lifespan support is fine."""
    loop = asyncio.get_running_loop()
    started = loop.create_future()
    forever = loop.create_future()  # no shutdown: the runtime exits with its sandbox

    async def receive():
        if not getattr(receive, "sent", False):
            receive.sent = True
            return {"type": "lifespan.startup"}
        await forever
        return {"type": "lifespan.shutdown"}

    async def send(message):
        kind = message.get("type") if isinstance(message, dict) else None
        if not started.done():
            if kind == "lifespan.startup.complete":
                started.set_result(None)
            elif kind == "lifespan.startup.failed":
                started.set_exception(RuntimeError(f"the ASGI application's startup failed: {message.get('message') or 'no message'}"))

    async def run():
        try:
            await app({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}, receive, send)
        except Exception:
            pass  # per the ASGI spec, an app that raises on the lifespan scope does not support it
        if not started.done():
            started.set_result(None)

    loop.create_task(run())
    await started


def asgi_loop(app):
    """One event loop for the app's whole life, in its own thread, started (with lifespan startup) on first use."""
    with asgi_lock:
        if asgi_state["loop"] is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="asgi-loop", daemon=True).start()
            try:
                asyncio.run_coroutine_threadsafe(asgi_lifespan(app, asgi_state["state"]), loop).result()
            except BaseException:
                loop.call_soon_threadsafe(loop.stop)  # the next call tries the startup again
                raise
            asgi_state["loop"] = loop
        return asgi_state["loop"]


def serve_asgi(app, event, http):
    loop = asgi_loop(app)
    r = request_parts(event, http)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": r["protocol"].split("/")[-1] if "/" in r["protocol"] else "1.1",
        "method": r["method"],
        "scheme": r["scheme"],
        "path": r["path"].decode("utf-8", "replace"),
        "raw_path": r["raw_path"].encode("latin-1", "replace"),
        "query_string": r["query"].encode("latin-1", "replace"),
        "root_path": r["root"],
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1", "replace")) for k, v in r["headers"].items()],
        "client": (r["source_ip"], 0) if r["source_ip"] else None,
        "server": (r["host"], r["port"]),
        # What lifespan startup stored, shallow-copied per request (as Starlette expects).
        "state": dict(asgi_state["state"]),
    }
    state = {"status": None, "headers": [], "chunks": [], "done": False, "request_sent": False}

    async def main():
        finished = asyncio.Event()

        async def receive():
            if not state["request_sent"]:
                state["request_sent"] = True
                return {"type": "http.request", "body": r["body"], "more_body": False}
            # The whole body was delivered: the next message is the disconnect, after the response.
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            kind = message.get("type") if isinstance(message, dict) else None
            if kind == "http.response.start":
                if state["status"] is not None:
                    raise InvalidResponse("the ASGI application sent http.response.start twice")
                state["status"] = message.get("status")
                state["headers"] = list(message.get("headers") or [])
            elif kind == "http.response.body":
                if state["status"] is None:
                    raise InvalidResponse("the ASGI application sent http.response.body before http.response.start")
                if state["done"]:
                    return
                state["chunks"].append(bytes(message.get("body") or b""))
                if not message.get("more_body"):
                    state["done"] = True
                    finished.set()
            else:
                raise InvalidResponse(f"the ASGI application sent an unknown message {kind!r}")

        try:
            await app(scope, receive, send)
        except Exception:
            # An error after the whole response went out does not undo it (servers log it too).
            if not state["done"]:
                raise
            traceback.print_exc()

    asyncio.run_coroutine_threadsafe(main(), loop).result()
    if state["status"] is None:
        raise InvalidResponse("the ASGI application returned without sending http.response.start")
    if not state["done"]:
        raise InvalidResponse("the ASGI application returned before finishing its body (more_body stayed true)")
    body = b"" if r["method"] == "HEAD" else b"".join(state["chunks"])
    return response_object(state["status"], state["headers"], body)


def add_import_paths(frame):
    """The function's installed requirements (read-only site-packages), behind its own directory."""
    for p in reversed(frame.get("importPaths") or []):
        if isinstance(p, str) and p not in sys.path:
            sys.path.insert(0, p)


def preload(frame):
    """Imports the function's requirements ahead of `load` (a pre-started runtime: SOCK's import cache)."""
    os.environ.clear()
    os.environ.update(frame["env"])
    add_import_paths(frame)
    try:
        with open(frame["entry"], encoding="utf-8") as fh:
            modules = json.load(fh).get("modules") or []
        for name in modules:
            importlib.import_module(name)
        send({"t": "preloaded"})
    except BaseException as exc:
        send({"t": "preload_error", "error": error_info(exc, "InitError")})


def load(frame):
    global handler, handler_arity, function
    function = frame["function"]
    os.environ.clear()
    os.environ.update(frame["env"])
    entry = frame["entry"]
    try:
        add_import_paths(frame)
        sys.path.insert(0, os.path.dirname(entry))
        spec = importlib.util.spec_from_file_location("lamina_function", entry)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, frame["handler"], None)
        if not callable(fn):
            names = ", ".join(n for n in dir(module) if not n.startswith("_")) or "none"
            send({"t": "load_error", "error": {"type": "HandlerNotFound", "message": f'no function "{frame["handler"]}" in {os.path.basename(entry)} (names: {names})'}})
            return
        try:
            params = [p for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            handler_arity = 1 if len(params) == 1 else 2
        except (TypeError, ValueError):  # a callable object without a signature (e.g. a C-level app)
            handler_arity = 2
        handler = fn
        send({"t": "loaded"})
    except BaseException as exc:  # the function's import failed: report it, keep running
        send({"t": "load_error", "error": error_info(exc, "InitError")})


def invoke(frame, arrived):
    call = {"id": frame["id"], "log_bytes": 0}
    current_call.set(call)
    try:
        http = frame.get("http")
        mode = http.get("mode") if isinstance(http, dict) else None
        if mode == "wsgi":
            value = serve_wsgi(handler, frame["event"], http)
        elif mode == "asgi":
            value = serve_asgi(handler, frame["event"], http)
        elif mode in (None, "json", "request"):
            args = (frame["event"],) if handler_arity == 1 else (frame["event"], Context(frame["context"]))
            value = handler(*args)
        else:
            raise InvalidResponse(f"the python runtime cannot serve HTTP mode {mode!r} (json, request, wsgi and asgi only)")
        try:
            text = json.dumps(value, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the handler's return value is not JSON-serializable: {exc}") from None
        if len(text) > MAX_RESULT_BYTES:
            raise ValueError(f"the handler's return value is {len(text)} bytes; the cap is {MAX_RESULT_BYTES}")
        ms = (time.perf_counter() - arrived) * 1000
        head = json.dumps({"t": "result", "id": frame["id"], "ok": True, "ms": ms}, separators=(",", ":"))
        data = (head[:-1] + ',"value":' + text + "}\n").encode("utf-8")
        with write_lock:
            channel.sendall(data)
    except BaseException as exc:
        kind = "InvalidResponse" if isinstance(exc, InvalidResponse) else "HandlerError"
        send({"t": "result", "id": frame["id"], "ok": False, "error": error_info(exc, kind), "ms": (time.perf_counter() - arrived) * 1000})


def main():
    sys.stdout = CallOutput("stdout")
    sys.stderr = CallOutput("stderr")

    def fatal(kind, exc, tb):
        try:
            send({"t": "fatal", "error": {"type": "HandlerError", "message": str(exc) or kind.__name__, "stack": "".join(traceback.format_exception(kind, exc, tb))}})
        finally:
            os._exit(1)

    sys.excepthook = fatal
    threading.excepthook = lambda a: fatal(a.exc_type, a.exc_value, a.exc_traceback)
    send({"t": "ready", "runtime": "python", "version": sys.version.split()[0], "pid": os.getpid()})
    for line in reader:
        arrived = time.perf_counter()
        if not line.strip():
            continue
        frame = json.loads(line)
        if frame["t"] == "load":
            load(frame)
        elif frame["t"] == "preload":
            preload(frame)
        elif frame["t"] == "invoke":
            if handler is None:
                send({"t": "result", "id": frame["id"], "ok": False, "error": {"type": "HandlerError", "message": "runtime not loaded"}})
            else:
                # One thread per call: calls may overlap (instanceConcurrency > 1).
                ctx = contextvars.copy_context()
                threading.Thread(target=ctx.run, args=(invoke, frame, arrived), daemon=True).start()
    # The worker closed the channel: leave at once, even if calls are running.
    os._exit(0)


if __name__ == "__main__":
    main()
