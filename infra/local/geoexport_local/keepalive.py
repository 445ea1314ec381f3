"""HTTP/1.1 keep-alive for the emulator's server. Werkzeug's development server closes every connection
after one request (it cannot tell where an unread request body ends), so each AWS call paid a new TCP
connection, a new server thread and a new client connection: the functions make ~15 calls per 100
features loaded.

A request here keeps its connection when its body's length is known (Content-Length, no chunking, no
``Expect: 100-continue``) and the client did not ask to close: whatever the application leaves unread of
the body is read after the answer, so the next request starts where it should. An answer without a
Content-Length, or shorter than it, ends by closing the connection. Anything else (HEAD, chunked or
continued uploads) is answered by werkzeug's own code, which closes the connection as before.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler


class _Body:
    """The request body as WSGI input: at most Content-Length bytes of the connection's stream."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self._left = length

    def read(self, size: int | None = -1) -> bytes:
        return self._take(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._take(self._stream.readline, size)

    def _take(self, reader: Any, size: int | None) -> bytes:
        if size is None or size < 0 or size > self._left:
            size = self._left
        data: bytes = reader(size) if size else b""
        self._left -= len(data)
        return data

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def drain(self) -> None:
        while self._left and self.read(min(self._left, 1 << 20)):
            pass


class KeepAliveHandler(MotoRequestHandler):
    """moto's request handler (its header handling included), keeping connections open when it can."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # An answer is written as headers, then body: without this the body of an answer on a kept
        # connection waited for the client's delayed acknowledgement of the headers (40 ms).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        length = self.headers.get("Content-Length", "0")
        if (
            self.command == "HEAD"
            or "Transfer-Encoding" in self.headers
            or "Expect" in self.headers
            or not length.isdigit()
            or self.close_connection
        ):
            super().run_wsgi()  # werkzeug: closes the connection
            return
        self.environ = environ = self.make_environ()
        body = _Body(self.rfile, int(length))
        environ["wsgi.input"] = body
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if exc_info and answer.get("sent"):
                raise exc_info[1].with_traceback(exc_info[2])
            answer["status"], answer["headers"] = status, headers
            return self._write_to(answer)

        try:
            result: Iterable[bytes] = self.server.app(environ, start_response)
            try:
                write = self._write_to(answer)
                for data in result:
                    write(data)
                write(b"")  # headers, for an empty body
                if answer.get("length", answer["written"]) != answer["written"]:
                    self.close_connection = True  # a body shorter than announced ends with the connection
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            if answer.get("sent"):
                self.close_connection = True  # the answer is cut: the client sees the connection end
                return
            self.log_error("error on request %s %s", self.command, self.path)
            self.send_response(500, "Internal Server Error")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        body.drain()  # what the application did not read, so the next request starts where it should

    def _write_to(self, answer: dict[str, Any]) -> Any:
        def write(data: bytes) -> None:
            if not answer.get("sent"):
                code, _, message = answer["status"].partition(" ")
                self.send_response(int(code), message)
                for key, value in answer["headers"]:
                    if key.lower() == "connection":
                        continue
                    if key.lower() == "content-length":
                        answer["length"] = int(value)
                    self.send_header(key, value)
                if "length" not in answer:
                    self.send_header("Connection", "close")  # the body ends where the connection does
                self.end_headers()
                answer["sent"], answer["written"] = True, 0
            if data:
                self.wfile.write(data)
                answer["written"] += len(data)

        return write
