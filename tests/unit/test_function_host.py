"""The local stack's Lambda model: one invocation per execution environment, and timeouts that hold."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from geoexport_local.functions import FunctionHost, FunctionTimeout
from geoexport_local.template import Function, Stack

HANDLER = """
import time

current = None  # per-request state in a module global, as powertools' resolver keeps its event

def lambda_handler(event, context):
    global current
    current = event["n"]
    time.sleep(event.get("sleep", 0.05))
    return {"n": current}
"""


def host(tmp_path: Path, timeout: int = 5) -> FunctionHost:
    (tmp_path / "app.py").write_text(HANDLER)
    stack = Stack("t", "us-east-1")
    stack.functions["Fn"] = Function(
        "Fn", "t-Fn", "arn:aws:lambda:us-east-1:1:function:t-Fn", tmp_path, "app.lambda_handler", {}, timeout
    )
    return FunctionHost(stack)


def test_concurrent_invocations_never_share_an_environment(tmp_path: Path) -> None:
    functions = host(tmp_path)
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda n: functions.call("Fn", {"n": n}), range(48)))
    assert [a["n"] for a in answers] == list(range(48))


def test_a_handler_past_its_timeout_fails_as_lambda_says(tmp_path: Path) -> None:
    functions = host(tmp_path, timeout=1)
    with pytest.raises(FunctionTimeout, match=r"timed out after 1\.00 seconds"):
        functions.call("Fn", {"n": 1, "sleep": 1.5})
    payload, failed = functions.invoke("Fn", json.dumps({"n": 2, "sleep": 1.5}))
    assert failed and json.loads(payload)["errorType"] == "Sandbox.Timedout"
    assert functions.call("Fn", {"n": 3, "sleep": 0}) == {"n": 3}  # another environment serves meanwhile


def test_concurrent_invocations_each_see_their_own_powertools_request() -> None:
    """powertools keeps the request in BaseRouter's class attributes; the local stack makes them per thread
    (Lambda runs one invocation per process, the local stack runs them as threads)."""
    import threading
    import time

    from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, BaseRouter

    from geoexport_local.functions import isolate_powertools_requests

    isolate_powertools_requests()
    isolate_powertools_requests()  # idempotent
    apps = [APIGatewayRestResolver() for _ in range(2)]
    seen: dict[int, tuple[object, object, object]] = {}

    def serve(i: int) -> None:
        BaseRouter.current_event = f"event {i}"  # what resolve() does
        BaseRouter.lambda_context = f"context {i}"
        time.sleep(0.02)
        seen[i] = (apps[i % 2].current_event, BaseRouter.current_event, apps[i % 2].lambda_context)

    threads = [threading.Thread(target=serve, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {i: (f"event {i}", f"event {i}", f"context {i}") for i in range(16)}
