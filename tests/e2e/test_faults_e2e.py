"""On a stack with faults injected: transient faults are retried; a running export can be aborted."""

from __future__ import annotations

import time

from tests.e2e.conftest import Service
from tests.e2e.test_api_e2e import Z8, landsat, square
from tests.e2e.test_export_e2e import export_body
from tests.support import Receiver


def test_transient_fault_is_retried_and_the_export_completes(faulty_service: Service) -> None:
    status, created, _ = faulty_service.request(
        "POST", "/export-tasks", export_body(landsat(faulty_service), square(-78.0, 24.0, 0.2), Z8)
    )
    assert status == 201
    done = faulty_service.wait(created["id"])[-1]
    assert done["status"] == "COMPLETED", done.get("errorReason")
    deadline = time.monotonic() + 30  # the task is COMPLETED inside Notify; the execution ends just after
    while (execution := faulty_service.execution(created["id"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    history = faulty_service.client("stepfunctions").get_execution_history(
        executionArn=execution["executionArn"]
    )
    failed = [e for e in history["events"] if e["type"] in ("TaskFailed", "LambdaFunctionFailed")]
    errors = [
        (e.get("taskFailedEventDetails") or e.get("lambdaFunctionFailedEventDetails") or {}) for e in failed
    ]
    # Clip raised once (TransientError) and Upload ran past its timeout once (Sandbox.Timedout): both retried.
    assert {e.get("error") for e in errors} == {"TransientError", "Sandbox.Timedout"}, errors
    assert execution["status"] == "SUCCEEDED"
    # The task's log tells the same: Clip failed once and ran again, Upload started twice.
    status, log, _ = faulty_service.request("GET", f"/export-tasks/{created['id']}/log")
    assert status == 200
    clip = [(e["type"], e["attempt"]) for e in log["entries"] if e["step"] == "Clip"]
    assert clip == [("STEP_START", 1), ("STEP_FAILED", 1), ("STEP_RETRY", 2), ("STEP_FINISH", 2)], clip
    failed = next(e for e in log["entries"] if e["type"] == "STEP_FAILED")
    assert "TransientError" in failed["message"]
    assert [e["attempt"] for e in log["entries"] if e["step"] == "Upload" and e["type"] == "STEP_FINISH"] == [
        2
    ]


def test_abort_stops_the_export_cleans_up_and_tells(faulty_service: Service, receiver: Receiver) -> None:
    storage_before = faulty_service.request("GET", "/storage")[1]
    status, created, _ = faulty_service.request(
        "POST",
        "/export-tasks",
        export_body(landsat(faulty_service), square(-77.5, 24.5, 0.3), Z8, receiver.url()),
    )
    assert status == 201
    deadline = time.monotonic() + 30
    while faulty_service.request("GET", f"/export-tasks/{created['id']}")[1]["status"] != "IN_PROGRESS":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, aborted, _ = faulty_service.request("POST", f"/export-tasks/{created['id']}/abort")
    assert status == 200 and aborted["status"] == "ABORTED"
    (call,) = receiver.wait_for(1)
    assert call["body"]["event"] == "TASK_FAILED" and call["body"]["status"] == "ABORTED"
    assert "aborted" in call["body"]["errorReason"]
    # The delayed Package step wakes up and must not resurrect the task: wait for the execution to end.
    deadline = time.monotonic() + 30
    while faulty_service.execution(created["id"])["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    task = faulty_service.request("GET", f"/export-tasks/{created['id']}")[1]
    assert task["status"] == "ABORTED" and task["artifacts"] == []
    # AWS ends a stopped execution ABORTED at once; moto's interpreter lets the in-flight step return first,
    # and that step then fails (its scratch was cleaned) -- either way the execution is over.
    assert faulty_service.execution(created["id"])["status"] in ("ABORTED", "FAILED")
    assert len(receiver.calls) == 1
    s3 = faulty_service.client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "exports" in b["Name"])
    assert s3.list_objects_v2(Bucket=bucket, Prefix=f"exports/{created['id']}/").get("KeyCount", 0) == 0
    assert faulty_service.request("GET", "/storage")[1]["reserved"] == storage_before["reserved"]
    assert faulty_service.request("POST", f"/export-tasks/{created['id']}/abort")[0] == 409
    assert (
        faulty_service.request("POST", "/export-tasks/00000000-0000-4000-8000-000000000000/abort")[0] == 404
    )


def test_permanent_fault_fails_the_task_naming_the_step_cleans_up_and_tells_once(
    broken_service: Service, receiver: Receiver
) -> None:
    before = broken_service.request("GET", "/storage")[1]
    status, created, _ = broken_service.request(
        "POST",
        "/export-tasks",
        export_body(landsat(broken_service), square(-77.9, 24.3, 0.3), Z8, receiver.url()),
    )
    assert status == 201
    task = broken_service.wait(created["id"])[-1]
    assert task["status"] == "FAILED" and task["errorReason"].startswith("Package step failed")
    assert "InjectedFault" in task["errorReason"] and task["artifacts"] == []
    (call,) = receiver.wait_for(1)
    assert call["body"]["event"] == "TASK_FAILED" and call["body"]["errorReason"] == task["errorReason"]
    time.sleep(1)
    assert len(receiver.calls) == 1
    s3 = broken_service.client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "exports" in b["Name"])
    for prefix in (f"scratch/{created['id']}/", f"exports/{created['id']}/"):
        assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount", 0) == 0, prefix
    after = broken_service.request("GET", "/storage")[1]
    assert after["reserved"] == before["reserved"] and after["used"] == before["used"]
    execution = broken_service.ended_execution(created["id"])
    assert execution["status"] == "FAILED"
