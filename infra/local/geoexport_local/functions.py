"""Runs the template's Lambda handlers, each imported once per execution environment with its own
environment variables. :class:`FunctionHost` keeps a process's environments; the local stack runs a few
function processes (:class:`ProcessHost` spreads invocations over them) so that handlers run on every core,
as Lambda's environments do, instead of sharing one interpreter lock. Invokes travel over loopback HTTP
(serve_invokes, RemoteFunctions)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import logging
import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

from geoexport_local.template import Function, Stack

log = logging.getLogger("geoexport_local")


@dataclass
class LocalContext:
    """The parts of Lambda's context object that handlers and powertools use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


_environ_lock = threading.Lock()


@contextmanager
def function_environment(extra: dict[str, str]) -> Iterator[None]:
    """Apply a function's variables while its module is imported (settings are read at cold start), then
    put back only what changed. Other threads keep running meanwhile, and GDAL and botocore read the
    process environment (credentials, HOME): clearing it and filling it again, as this once did, let a
    render thread find no credentials at all during a cold start of another environment (a fan-out's
    work item failed with "AWS_SECRET_ACCESS_KEY ... not defined, and /.aws/credentials not filled")."""
    with _environ_lock:
        saved = dict(os.environ)
        os.environ.update(extra)
        try:
            yield
        finally:
            for key in [key for key in os.environ if key not in saved]:
                del os.environ[key]
            for key, value in saved.items():
                if os.environ.get(key) != value:
                    os.environ[key] = value


#: Execution environments one function may have at once locally (Lambda scales further; enough here).
MAX_ENVIRONMENTS = 16


class _PerThread:
    """A class attribute whose value is per thread, for reads through the class and its instances."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._values = threading.local()

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        try:
            return getattr(self._values, self._name)
        except AttributeError:
            raise AttributeError(self._name) from None

    def __set__(self, instance: Any, value: Any) -> None:
        setattr(self._values, self._name, value)


def isolate_powertools_requests() -> None:
    """powertools' resolvers keep the request they serve in *class* attributes (``BaseRouter.current_event``
    and ``lambda_context``, set at the start of every ``resolve``). On Lambda one process serves one
    invocation at a time; here concurrent invocations are threads of one process, so one request could read
    another's event (seen: two of fifty concurrent POSTs answered with a third one's body). Make those two
    attributes per thread: set through the class (a metaclass descriptor) and read through the class or an
    instance (a class descriptor), each thread sees its own request."""
    from abc import ABCMeta

    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    if isinstance(type(BaseRouter).__dict__.get("current_event"), _PerThread):
        return
    names = ("current_event", "lambda_context")
    slots = {name: _PerThread(name) for name in names}
    meta = type("PerThreadRouterMeta", (type(BaseRouter),), dict(slots))
    assert issubclass(meta, ABCMeta)
    for name in names:
        if name in BaseRouter.__dict__:
            delattr(BaseRouter, name)
        type.__setattr__(BaseRouter, name, slots[name])  # instance reads: BaseRouter.__dict__[name]
    setattr(BaseRouter, "__class__", meta)  # noqa: B010  (class writes and reads: the metaclass's descriptor)


class FunctionHost:
    """Lambda's execution model in one process: each invocation gets an execution environment (a separate
    import of the handler module, with its own globals) that serves one invocation at a time; concurrent
    invocations cold-start more environments. Handlers keep per-request state in module globals
    (powertools' resolver keeps the current event), so sharing one module between threads would mix
    requests up."""

    def __init__(self, stack: Stack) -> None:
        isolate_powertools_requests()
        self.stack = stack
        self._free: dict[str, list[ModuleType]] = {}
        self._count: dict[str, int] = {}
        self._pool = threading.Condition()
        self._by_name: dict[str, Function] = {}
        for function in stack.functions.values():
            self._by_name[function.name] = function
            self._by_name[function.arn] = function
            self._by_name[function.logical_id] = function

    def load_all(self) -> None:
        """Cold-start one environment of every function now, so the first request does not pay for it."""
        for function in self.stack.functions.values():
            self._release(function, self._acquire(function))

    def _cold_start(self, function: Function, index: int) -> ModuleType:
        module_file, _, _ = function.handler.rpartition(".")
        path = function.code_dir / f"{module_file}.py"
        spec = importlib.util.spec_from_file_location(f"geoexport_fn_{function.logical_id}_{index}", path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        with function_environment(function.environment):
            spec.loader.exec_module(module)
        return module

    def _acquire(self, function: Function) -> ModuleType:
        key = function.logical_id
        with self._pool:
            while True:
                free = self._free.setdefault(key, [])
                if free:
                    return free.pop()
                if self._count.get(key, 0) < MAX_ENVIRONMENTS:
                    self._count[key] = index = self._count.get(key, 0) + 1
                    break
                self._pool.wait()
        try:
            return self._cold_start(function, index)
        except BaseException:
            with self._pool:
                self._count[key] -= 1
                self._pool.notify_all()
            raise

    def _release(self, function: Function, module: ModuleType) -> None:
        with self._pool:
            self._free.setdefault(function.logical_id, []).append(module)
            self._pool.notify_all()

    def function(self, name_or_arn: str) -> Function:
        base = name_or_arn.split(":$LATEST", maxsplit=1)[0]
        if base not in self._by_name:
            raise KeyError(f"no function {name_or_arn} in template.yaml")
        return self._by_name[base]

    def call(self, name_or_arn: str, event: Any) -> Any:
        """Invoke and return the handler's result; exceptions propagate (the API gateway path).

        The template's Timeout holds, as on Lambda: a handler still running then raises FunctionTimeout
        here (the thread cannot be killed; it is left to finish and its result is dropped).
        """
        function = self.function(name_or_arn)
        module = self._acquire(function)
        handler = getattr(module, function.handler.rpartition(".")[2])
        context = LocalContext(
            function.name, function.arn, 512, str(uuid.uuid4()), time.monotonic() + function.timeout
        )
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = handler(event, context)
            except BaseException as error:  # handed to the caller below
                outcome["error"] = error
            finally:
                self._release(function, module)  # only when done: a timed-out one stays busy until then

        worker = threading.Thread(target=run, name=f"lambda-{function.logical_id}", daemon=True)
        worker.start()
        worker.join(function.timeout)
        if worker.is_alive():
            raise FunctionTimeout(f"Task timed out after {function.timeout:.2f} seconds")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")

    def invoke(self, name_or_arn: str, payload: bytes | str) -> tuple[bytes, bool]:
        """Lambda Invoke semantics: (response payload, function error?) with AWS's error document."""
        try:
            event = json.loads(payload or b"{}")
            result = self.call(name_or_arn, event)
            return json.dumps(result, default=str).encode(), False
        except Exception as error:
            log.warning("%s raised %s: %s", name_or_arn.rsplit(":", 1)[-1], type(error).__name__, error)
            document = {
                "errorMessage": str(error),
                "errorType": ERROR_TYPES.get(type(error), type(error).__name__),
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return json.dumps(document).encode(), True


class FunctionTimeout(Exception):
    """The handler ran past its template Timeout."""


class FunctionError(Exception):
    """A handler in a function process raised; ``str()`` is its message, as for the exception it raised
    (the gateway tells the authorizer's "Unauthorized" by it), ``trace`` what that process saw."""

    def __init__(self, message: str, error_type: str, trace: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.trace = trace


def remote_error(document: dict[str, Any]) -> Exception:
    """The exception a Lambda error document stands for (a timeout stays a :class:`FunctionTimeout`)."""
    message = str(document.get("errorMessage", ""))
    error_type = str(document.get("errorType", "Error"))
    if error_type == ERROR_TYPES[FunctionTimeout]:
        return FunctionTimeout(message)
    trace = "".join(document.get("stackTrace") or []) + f"{error_type}: {message}\n"
    return FunctionError(message, error_type, trace)


#: How Lambda names errors the runtime (not the handler) raises, as Step Functions sees them.
ERROR_TYPES: dict[type[BaseException], str] = {FunctionTimeout: "Sandbox.Timedout"}


class Invoker(Protocol):
    """What moto's Lambda backend hands an Invoke to."""

    def invoke(self, name_or_arn: str, payload: bytes | str) -> tuple[bytes, bool]: ...


class Functions(Invoker, Protocol):
    """What the gateway, the event sources and the schedules run handlers with: in this process
    (:class:`FunctionHost`) or in function processes (:class:`ProcessHost`)."""

    stack: Stack

    def call(self, name_or_arn: str, event: Any) -> Any: ...


def serve_invokes(host: str, functions: Invoker) -> ThreadingHTTPServer:
    """The Lambda service's side of Invoke for the emulator process: ``POST /functions/<name>`` runs the
    handler here and answers its payload (``X-Function-Error`` set when it raised)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            payload, errored = functions.invoke(unquote(self.path.removeprefix("/functions/")), body)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            if errored:
                self.send_header("X-Function-Error", "Unhandled")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the functions log for themselves."""

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # A burst of new connections (the gateway opens one per client connection and function process)
        # queues instead of being reset: with socketserver's 5, 50 identical POSTs at once got a 502 now
        # and then, and 200 connections at once were reset 4 times in 5.
        request_queue_size = 256

    server = Server((host, 0), Handler)
    threading.Thread(target=server.serve_forever, name="invokes", daemon=True).start()
    return server


class RemoteFunctions:
    """The emulator process's view of the function host: an Invoke is a POST to :func:`serve_invokes`.
    One kept-alive connection per thread (moto's server handles each connection on its own thread)."""

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self._address = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._local = threading.local()

    def invoke(self, name_or_arn: str, payload: bytes | str) -> tuple[bytes, bool]:
        body = payload.encode() if isinstance(payload, str) else payload
        connection = getattr(self._local, "connection", None)
        if connection is None:  # the host never closes a connection: kept while this thread lives
            connection = self._local.connection = HTTPConnection(*self._address)
        try:
            connection.request("POST", f"/functions/{quote(name_or_arn, safe='')}", body=body)
            answer = connection.getresponse()
            return answer.read(), answer.getheader("X-Function-Error") is not None
        except BaseException:  # no retry: the invocation may have run
            connection.close()
            self._local.connection = None
            raise


class ProcessHost:
    """The function host of the local stack's main process: every invocation runs in one of a few function
    processes (each a :class:`FunctionHost` behind :func:`serve_invokes`), the least busy one. One process
    ran the gateway, the event sources and every handler under one interpreter lock: it used ~0.8 of a core
    however many requests came at once. The same outcomes as :class:`FunctionHost`: results, the error
    document, timeouts (the function process enforces them)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._processes: list[RemoteFunctions] = []
        self._busy: list[int] = []
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._attached = threading.Event()

    def attach(self, urls: list[str]) -> None:
        """The function processes' invoke URLs, once they are ready (invocations wait until then: the
        emulator may resume a saved execution while they still import their handlers)."""
        if not urls:
            raise ValueError("no function process")
        self._processes = [RemoteFunctions(url) for url in urls]
        self._busy = [0] * len(urls)
        self._attached.set()

    def _take(self) -> int:
        """The least busy process (ties in turn, so idle processes share the work)."""
        self._attached.wait()
        with self._lock:
            start = next(self._turn)
            count = len(self._busy)
            index = min(((start + i) % count for i in range(count)), key=self._busy.__getitem__)
            self._busy[index] += 1
            return index

    def invoke(self, name_or_arn: str, payload: bytes | str) -> tuple[bytes, bool]:
        index = self._take()
        try:
            return self._processes[index].invoke(name_or_arn, payload)
        finally:
            with self._lock:
                self._busy[index] -= 1

    def call(self, name_or_arn: str, event: Any) -> Any:
        """As :meth:`FunctionHost.call`: the handler's result, or its error raised here."""
        payload, failed = self.invoke(name_or_arn, json.dumps(event, default=str).encode())
        answer = json.loads(payload) if payload else None
        if failed:
            raise remote_error(answer if isinstance(answer, dict) else {"errorMessage": str(answer)})
        return answer
