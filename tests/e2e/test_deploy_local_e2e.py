"""A second, independent deployment (issue 11): `make deploy-local` puts the unchanged template.yaml, as
`sam build` built it, through the SAM CLI's CloudFormation path onto MiniStack; one RASTER export then runs
through the deployed API Gateway URL, Step Functions and the built Lambdas (with their layers) to COMPLETED,
and the GeoPackage downloaded from its presigned link passes GDAL's validator."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from geoexport_local.deploy import stop_group
from tests.e2e.conftest import follow
from tests.e2e.test_api_e2e import Z8, square
from tests.e2e.test_export_e2e import export_body
from tests.support import ROOT, Receiver, free_port, validate_gpkg

pytestmark = pytest.mark.deployed


def call(api: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_the_template_deploys_to_ministack_and_an_export_completes_there(tmp_path: Path) -> None:
    if not (ROOT / ".aws-sam" / "build" / "template.yaml").exists():
        pytest.fail("no sam build output: run `make build` (make test does) first")
    state = tmp_path / "deployed.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "geoexport_local.deploy", "--port", str(free_port()), "--state", str(state)],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SAM_CLI_TELEMETRY": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output, ready = follow(process, "deployed ready")
    try:
        assert ready.wait(420), "deploy-local did not become ready:\n" + "".join(output[-60:])
        print("".join(line for line in output if "ready" in line or "authorizer" in line), flush=True)
        facts = json.loads(state.read_text())
        api = facts["api"]
        assert "/_aws/execute-api/" in api and api.startswith("http://127.0.0.1:")

        # The deployed authorizer guards the API; the public health route is open.
        assert call(api, "GET", "/health")[0] == 200
        assert call(api, "GET", "/export-tasks")[0] == 401
        status, token = call(
            api,
            "POST",
            "/auth/token",
            {"client_id": facts["client_id"], "client_secret": facts["client_secret"]},
        )
        assert status == 200, token
        bearer = token["access_token"]

        record = facts["records"]["landsat-bahamas-rgb"]
        receiver = Receiver().start()  # the callback comes from the tasks table's stream (TaskChanges)
        body = export_body(record, square(-77.9, 24.3, 0.15), Z8, receiver.url())
        status, task = call(api, "POST", "/export-tasks", body, bearer)
        assert status == 201, task
        deadline = time.monotonic() + 240
        while task["status"] not in ("COMPLETED", "FAILED"):
            assert time.monotonic() < deadline, task
            time.sleep(1)
            task = call(api, "GET", f"/export-tasks/{task['id']}", token=bearer)[1]
        assert task["status"] == "COMPLETED", task
        (gpkg,) = [a for a in task["artifacts"] if a["type"] == "GPKG"]
        with urllib.request.urlopen(gpkg["url"], timeout=60) as answer:
            data = answer.read()
        assert hashlib.sha256(data).hexdigest() == gpkg["sha256"] and len(data) == gpkg["size"]
        path = tmp_path / gpkg["name"]
        path.write_bytes(data)
        validate_gpkg(path)
        (callback,) = receiver.wait_for(1, timeout=60)
        assert callback["body"]["status"] == "COMPLETED" and callback["body"]["jobId"] == task["id"]
        assert "webhook-signature" in {k.lower() for k in callback["headers"]}
        time.sleep(3)
        assert len(receiver.calls) == 1  # exactly one final callback
    finally:
        stop_group(process, 30)
