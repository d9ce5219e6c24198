"""Lamina's Python runtime: runs inside a sandbox and speaks the worker protocol
(docs/runtime-protocol.md) on fd 3. Standard library only.

Handlers: OpenLambda's `def f(event)` or Lambda's `def handler(event, context)`;
the number of parameters decides which is called.
"""
import contextvars
import importlib.util
import inspect
import json
import os
import socket
import sys
import threading
import time
import traceback

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


def load(frame):
    global handler, handler_arity, function
    function = frame["function"]
    os.environ.clear()
    os.environ.update(frame["env"])
    entry = frame["entry"]
    try:
        sys.path.insert(0, os.path.dirname(entry))
        spec = importlib.util.spec_from_file_location("lamina_function", entry)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = getattr(module, frame["handler"], None)
        if not callable(fn):
            names = ", ".join(n for n in dir(module) if not n.startswith("_")) or "none"
            send({"t": "load_error", "error": {"type": "HandlerNotFound", "message": f'no function "{frame["handler"]}" in {os.path.basename(entry)} (names: {names})'}})
            return
        params = [p for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        handler_arity = 1 if len(params) == 1 else 2
        handler = fn
        send({"t": "loaded"})
    except BaseException as exc:  # the function's import failed: report it, keep running
        send({"t": "load_error", "error": error_info(exc, "InitError")})


def invoke(frame, arrived):
    call = {"id": frame["id"], "log_bytes": 0}
    current_call.set(call)
    try:
        args = (frame["event"],) if handler_arity == 1 else (frame["event"], Context(frame["context"]))
        value = handler(*args)
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
        send({"t": "result", "id": frame["id"], "ok": False, "error": error_info(exc), "ms": (time.perf_counter() - arrived) * 1000})


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
