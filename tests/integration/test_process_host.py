"""The local stack's function processes, seen from the main process (ProcessHost): results, errors and
timeouts come back as FunctionHost gives them, and overlapping invocations are spread over the processes.
Each "process" here is a FunctionHost behind serve_invokes on loopback, as in a function process."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from geoexport_local.functions import (
    FunctionError,
    FunctionHost,
    FunctionTimeout,
    ProcessHost,
    RemoteFunctions,
    serve_invokes,
)
from geoexport_local.template import Function, Stack

HANDLER = """
import os
import time

WHO = os.environ["WHO"]  # read at cold start, as settings are


def lambda_handler(event, context):
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        raise ValueError(event["fail"])
    return {"n": event["n"], "who": WHO}
"""


def stack(code: Path, who: str, timeout: int = 5) -> Stack:
    found = Stack("t", "us-east-1")
    arn = "arn:aws:lambda:us-east-1:1:function:t-Fn"
    found.functions["Fn"] = Function("Fn", "t-Fn", arn, code, "app.lambda_handler", {"WHO": who}, timeout)
    return found


@pytest.fixture
def host(tmp_path: Path) -> ProcessHost:
    (tmp_path / "app.py").write_text(HANDLER)
    processes = [serve_invokes("127.0.0.1", FunctionHost(stack(tmp_path, who, timeout=1))) for who in "ab"]
    found = ProcessHost(stack(tmp_path, "main"))
    found.attach([f"http://127.0.0.1:{server.server_port}" for server in processes])
    return found


def test_results_errors_and_timeouts_come_back_as_in_process(host: ProcessHost) -> None:
    assert host.call("Fn", {"n": 1})["n"] == 1
    assert host.call("t-Fn", {"n": 2})["n"] == 2  # by name or logical id, as FunctionHost
    with pytest.raises(FunctionError) as raised:
        host.call("Fn", {"n": 3, "fail": "no such band"})
    assert str(raised.value) == "no such band" and raised.value.error_type == "ValueError"
    assert "lambda_handler" in raised.value.trace and "ValueError: no such band" in raised.value.trace
    with pytest.raises(FunctionTimeout, match=r"timed out after 1\.00 seconds"):
        host.call("Fn", {"n": 4, "sleep": 1.5})
    payload, failed = host.invoke("Fn", json.dumps({"n": 5, "fail": "x"}))
    assert failed and json.loads(payload)["errorType"] == "ValueError"
    payload, failed = host.invoke("Nope", b"{}")
    assert failed and "no function Nope" in json.loads(payload)["errorMessage"]


def test_overlapping_invocations_are_spread_over_the_processes(host: ProcessHost) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: host.call("Fn", {"n": n, "sleep": 0.2}), range(16)))
    assert [a["n"] for a in answers] == list(range(16))
    served = {who: sum(a["who"] == who for a in answers) for who in "ab"}
    assert min(served.values()) >= 6, served  # the least busy one each time (about four and four at once)
    # One after the other, idle processes take turns.
    assert {host.call("Fn", {"n": n})["who"] for n in range(4)} == {"a", "b"}


def test_invocations_wait_until_the_processes_are_ready(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(HANDLER)
    host = ProcessHost(stack(tmp_path, "main"))
    answers: list[object] = []
    early = threading.Thread(target=lambda: answers.append(host.call("Fn", {"n": 7})))
    early.start()
    time.sleep(0.3)
    assert early.is_alive() and not answers  # no process yet: it waits, it does not fail
    server = serve_invokes("127.0.0.1", FunctionHost(stack(tmp_path, "late")))
    host.attach([f"http://127.0.0.1:{server.server_port}"])
    early.join(10)
    assert answers == [{"n": 7, "who": "late"}]
    with pytest.raises(ValueError, match="no function process"):
        ProcessHost(stack(tmp_path, "x")).attach([])


def test_a_burst_of_new_connections_is_served_not_reset(tmp_path: Path) -> None:
    """The gateway opens a connection per client connection and function process: 50 identical POSTs at
    once were now and then answered 502 (a connection reset by the function process's 5-deep backlog)."""
    (tmp_path / "app.py").write_text(HANDLER)
    server = serve_invokes("127.0.0.1", FunctionHost(stack(tmp_path, "a")))
    url = f"http://127.0.0.1:{server.server_port}"
    start = threading.Barrier(150)

    def one(n: int) -> tuple[bytes, bool]:
        connection = RemoteFunctions(url)  # a fresh connection each, as from a new gateway thread
        start.wait()
        return connection.invoke("Fn", json.dumps({"n": n}))

    with ThreadPoolExecutor(max_workers=150) as pool:
        answers = list(pool.map(one, range(150)))
    assert [json.loads(payload)["n"] for payload, failed in answers if not failed] == list(range(150))
