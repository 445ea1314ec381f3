"""The emulator's HTTP server keeps connections open (geoexport_local.keepalive): many AWS calls on one
connection, a body the application left unread does not spill into the next request, and answers of
unknown length, failures and clients asking to close end the connection."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from geoexport_local.keepalive import KeepAliveHandler
from tests.integration.conftest import Cloud


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/echo":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/ignore":  # never reads the request's body
        start_response("200 OK", [("Content-Length", "7")])
        return [b"ignored"]
    if path == "/short":  # announces more than it sends: the connection ends, not the client's wait
        start_response("200 OK", [("Content-Length", "10")])
        return [b"short"]
    if path == "/stream":  # no length: the body ends with the connection
        start_response("200 OK", [])
        return iter([b"one ", b"two"])
    raise RuntimeError("a failing application")


@pytest.fixture
def server() -> Iterator[int]:
    serving = make_server("127.0.0.1", 0, app, threaded=True, request_handler=KeepAliveHandler)
    thread = threading.Thread(target=serving.serve_forever, daemon=True)
    thread.start()
    try:
        yield serving.server_port
    finally:
        serving.shutdown()


def ask(
    connection: http.client.HTTPConnection, path: str, body: bytes = b"", **headers: str
) -> tuple[int, bytes]:
    connection.request("POST", path, body=body, headers=headers)
    answer = connection.getresponse()
    return answer.status, answer.read()


def test_one_connection_serves_many_requests_and_unread_bodies_are_skipped(server: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    assert ask(connection, "/echo", b"first") == (200, b"first")
    sock = connection.sock
    assert ask(connection, "/ignore", b"x" * 200_000) == (200, b"ignored")  # 200 KB left unread
    assert ask(connection, "/echo", b"second") == (200, b"second")
    assert connection.sock is sock  # the same connection all along


def test_unknown_lengths_failures_and_close_requests_end_the_connection(server: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    assert ask(connection, "/stream") == (200, b"one two")
    assert connection.sock is None  # closed by the server: the body ended there

    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    connection.request("POST", "/short")
    with pytest.raises(http.client.IncompleteRead):
        connection.getresponse().read()

    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    status, _ = ask(connection, "/fail", b"body")
    assert status == 500 and connection.sock is None

    connection = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    assert ask(connection, "/echo", b"bye", Connection="close") == (200, b"bye")
    assert connection.sock is None


def test_aws_calls_share_connections(cloud: Cloud) -> None:
    """Through botocore, as the functions call the emulator: many calls, one connection."""
    db = cloud.client("dynamodb")
    pool = db._endpoint.http_session._manager.connection_from_url(cloud.endpoint)
    for _ in range(5):
        db.list_tables()
    assert pool.num_connections == 1 and pool.num_requests >= 5
