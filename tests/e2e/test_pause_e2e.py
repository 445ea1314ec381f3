"""Issue 18, pause and resume as a user does it: a fanned-out export paused while its work items render
stops at the next boundary (its execution ends at the state machine's Paused state), keeps its progress,
and when resumed continues in a new execution to COMPLETED with exactly the tiles of an unpaused run."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Service
from tests.e2e.test_export_e2e import export_body

Z8 = 0.00274658203125


def tiles(service: Service, task: dict[str, Any], target: Path) -> dict[tuple[int, int, int], str]:
    """(zoom, column, row) -> sha256 of the tile, read from the task's GeoPackage with SQLite."""
    (gpkg,) = [a for a in task["artifacts"] if a["type"] == "GPKG"]
    target.write_bytes(urllib.request.urlopen(gpkg["url"], timeout=30).read())
    with sqlite3.connect(target) as db:
        (table,) = db.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'tiles'").fetchone()
        rows = db.execute(f'SELECT zoom_level, tile_column, tile_row, tile_data FROM "{table}"').fetchall()
    return {(z, c, r): hashlib.sha256(data).hexdigest() for z, c, r, data in rows}


def test_pause_mid_export_then_resume(service: Service, tmp_path: Path) -> None:
    landsat = service.records()["landsat-bahamas-rgb"]
    body = export_body(landsat["id"], landsat["footprint"], Z8)
    # The same export, unpaused (or the identical one an earlier test made: dedupe answers with it).
    status, reference, _ = service.request("POST", "/export-tasks", body)
    assert status in (200, 201), reference
    # A request with a transport is another request for dedupe, with the same output: a task of its own.
    status, task, _ = service.request("POST", "/export-tasks", {**body, "transports": [{"type": "download"}]})
    assert status == 201, task

    deadline = time.monotonic() + 120
    while True:  # pause once its work items are rendering (Clip has planned them: progress > 10)
        seen = service.request("GET", f"/export-tasks/{task['id']}")[1]
        if seen["progress"] > 10 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    status, paused, _ = service.request("POST", f"/export-tasks/{task['id']}/pause")
    assert status == 200 and paused["status"] == "PAUSED", paused

    # The execution ends at its Paused state (the next work item or step boundary sees PAUSED).
    sfn = service.client("stepfunctions")
    deadline = time.monotonic() + 120
    while (execution := service.execution(task["id"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the paused export kept running"
        time.sleep(0.2)
    assert execution["status"] == "SUCCEEDED" and json.loads(execution["output"]) == {"paused": True}
    held = service.request("GET", f"/export-tasks/{task['id']}")[1]
    assert held["status"] == "PAUSED" and held["progress"] >= paused["progress"] and held["artifacts"] == []
    time.sleep(2)
    still = service.request("GET", f"/export-tasks/{task['id']}")[1]
    assert (still["status"], still["progress"]) == ("PAUSED", held["progress"])  # nothing runs meanwhile
    assert service.request("POST", f"/export-tasks/{task['id']}/pause")[0] == 409

    status, resumed, _ = service.request("POST", f"/export-tasks/{task['id']}/resume")
    assert status == 200 and resumed["status"] == "IN_PROGRESS", resumed
    done = service.wait(task["id"], timeout=300)[-1]
    assert done["status"] == "COMPLETED", done.get("errorReason")
    assert service.request("POST", f"/export-tasks/{task['id']}/resume")[0] == 409
    # The task is COMPLETED by the Notify step, before its execution ends (the invoke still returns).
    deadline = time.monotonic() + 60
    while True:
        continued = sfn.list_executions(stateMachineArn=execution["stateMachineArn"])["executions"]
        statuses = {e["name"]: e["status"] for e in continued}
        if statuses.get(f"{task['id']}-continue-1") == "SUCCEEDED" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert statuses.get(f"{task['id']}-continue-1") == "SUCCEEDED", statuses
    kinds = [e["type"] for e in service.log_with(task["id"], "EXPORT_FINISH")]
    assert kinds.index("EXPORT_PAUSED") < kinds.index("EXPORT_RESUMED") < kinds.index("EXPORT_FINISH"), kinds

    unpaused = service.wait(reference["id"], timeout=300)[-1]
    assert unpaused["status"] == "COMPLETED", unpaused.get("errorReason")
    assert tiles(service, done, tmp_path / "resumed.gpkg") == tiles(
        service, unpaused, tmp_path / "unpaused.gpkg"
    )


def test_the_operator_pause_holds_new_work_and_resumes_it(service: Service) -> None:
    from tests.e2e.test_auth_e2e import new_client

    plain = new_client(service, "no-operator", "exports:read,exports:write")
    token = service.issue_token(plain["client_id"], plain["client_secret"])
    assert service.request("POST", "/operations/pause", {"reason": "x"}, token=token)[0] == 403
    assert service.request("GET", "/operations/pause", token=token)[0] == 403

    status, state, _ = service.request("POST", "/operations/pause", {"reason": "storage maintenance"})
    assert status == 200 and state["paused"] and state["reason"] == "storage maintenance", state
    try:
        landsat = service.records()["landsat-bahamas-rgb"]
        ring = [[-77.31, 23.9], [-77.1, 23.9], [-77.1, 24.1], [-77.31, 24.1], [-77.31, 23.9]]  # its own ROI
        body = export_body(landsat["id"], {"type": "Polygon", "coordinates": [ring]}, 0.0054931640625)
        status, task, _ = service.request("POST", "/export-tasks", body)
        assert status == 201, task  # accepted: nothing is refused or lost
        deadline = time.monotonic() + 60
        while (held := service.request("GET", f"/export-tasks/{task['id']}")[1])["status"] != "PAUSED":
            assert time.monotonic() < deadline and held["status"] in ("PENDING", "IN_PROGRESS"), held
            time.sleep(0.2)
        assert held["pausedBy"] == "operator" and held["artifacts"] == []
        assert service.request("GET", "/operations/pause")[1]["paused"] is True
    finally:
        status, resumed, _ = service.request("POST", "/operations/resume")
    assert status == 200 and resumed["state"]["paused"] is False, resumed
    assert task["id"] in resumed["resumed"] and resumed["more"] is False
    done = service.wait(task["id"], timeout=180)[-1]
    assert done["status"] == "COMPLETED", done.get("errorReason")
    kinds = [e["type"] for e in service.log_with(task["id"], "EXPORT_FINISH")]
    assert kinds.index("EXPORT_PAUSED") < kinds.index("EXPORT_RESUMED") < kinds.index("EXPORT_FINISH"), kinds
