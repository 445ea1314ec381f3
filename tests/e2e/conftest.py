"""The local stack, started exactly as `make run` starts it, on free loopback ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, free_port


@dataclass
class Service:
    api: str
    aws: str
    output: list[str]
    client_id: str = ""
    client_secret: str = ""
    token: str = ""
    state: Path | None = None  # the stack's state file (demo client, tables), for the CLI
    webhook_secret: str = ""  # the demo client's: its callbacks are signed with it
    data_dir: Path | None = None  # where the stack keeps its state (GEOEXPORT_DATA_DIR)

    @property
    def ports(self) -> tuple[int, int]:
        return int(self.aws.rsplit(":", 1)[1]), int(self.api.rsplit(":", 1)[1])

    def issue_token(self, client_id: str, client_secret: str) -> str:
        body = {"client_id": client_id, "client_secret": client_secret}
        status, answer, _ = self.request("POST", "/auth/token", body, token=None)
        assert status == 200, answer
        return str(answer["access_token"])

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        token: str | bool | None = True,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """As the demo client by default; ``token=None`` sends none, a string sends that one."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json", **(extra_headers or {})}
        bearer = self.token if token is True else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        request = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read()
                return response.status, json.loads(text or b"{}"), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}"), dict(error.headers)

    def records(self) -> dict[str, dict[str, Any]]:
        status, body, _ = self.request("GET", "/catalog/records")
        assert status == 200
        return {record["name"]: record for record in body["records"]}

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.aws,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def subscribe(self, bus: str, source: str) -> str:
        """A subscriber's own rule on ``bus`` (events from ``source``) into a queue of its own; its URL."""
        sqs, events = self.client("sqs"), self.client("events")
        name = f"subscriber-{uuid.uuid4().hex[:8]}"
        url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": [source]}))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
        return url

    def execution(self, task_id: str) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        (machine,) = sfn.list_state_machines()["stateMachines"]
        arn = machine["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{task_id}"
        return dict(sfn.describe_execution(executionArn=arn))

    def ended_execution(self, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The task's execution once it has ended: a task's final status is written by a step of it, before
        the execution itself ends."""
        deadline = time.monotonic() + timeout
        while (execution := self.execution(task_id))["status"] == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        return execution

    def executions(self) -> int:
        sfn = self.client("stepfunctions")
        (machine,) = sfn.list_state_machines()["stateMachines"]
        return len(sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"])

    def log_with(self, task_id: str, kind: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The task's log once it holds an entry of ``kind``: status entries are written by the reaction
        to the stored change (the tasks stream), just after the change itself."""
        deadline = time.monotonic() + timeout
        while True:
            status, log, _ = self.request("GET", f"/export-tasks/{task_id}/log")
            assert status == 200, log
            entries: list[dict[str, Any]] = log["entries"]
            if any(entry["type"] == kind for entry in entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.2)

    def wait(self, task_id: str, timeout: float = 120.0, every: float = 0.1) -> list[dict[str, Any]]:
        """Poll (each ``every`` s) until the task ends; returns every distinct (status, progress) seen."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, task, _ = self.request("GET", f"/export-tasks/{task_id}")
            assert status == 200, task
            if not seen or (seen[-1]["status"], seen[-1]["progress"]) != (task["status"], task["progress"]):
                seen.append(task)
            if task["status"] in ("COMPLETED", "FAILED", "ABORTED"):
                return seen
            time.sleep(every)
        raise AssertionError(f"task {task_id} did not finish: {seen[-1] if seen else None}")


def follow(process: subprocess.Popen[str], marker: str) -> tuple[list[str], threading.Event]:
    """Collect a subprocess's output lines; the event is set once a line holds ``marker``."""
    output: list[str] = []
    seen = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if marker in line:
                seen.set()

    threading.Thread(target=pump, daemon=True).start()
    return output, seen


def start_stack(
    extra_env: dict[str, str],
    data_dir: Path | None = None,
    ports: tuple[int, int] | None = None,
) -> tuple[subprocess.Popen[str], Service]:
    """Start `make run`'s stack; a given data directory (and ports) starts it again on what it kept."""
    aws_port, api_port = ports or (free_port(), free_port())
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="geoexport-e2e-"))  # one per stack
    state = data_dir / "local.json"
    env = {
        **os.environ,
        "GEOEXPORT_AWS_PORT": str(aws_port),
        "GEOEXPORT_API_PORT": str(api_port),
        "PYTHONUNBUFFERED": "1",
        "GEOEXPORT_DATA_DIR": str(data_dir),
        "GEOEXPORT_STATE": str(state),
        **extra_env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "geoexport_local", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as `make run` in a terminal: killable whole
    )
    output, ready = follow(process, "ready")
    if not ready.wait(180):
        process.kill()
        raise AssertionError("local stack did not become ready:\n" + "".join(output[-50:]))
    demo = json.loads(state.read_text())
    service = Service(
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{aws_port}",
        output,
        demo["client_id"],
        demo["client_secret"],
    )
    service.token = service.issue_token(demo["client_id"], demo["client_secret"])
    service.state = state
    service.data_dir = data_dir
    service.webhook_secret = demo["webhook_secret"]
    return process, service


def stop_stack(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


CHANGE_WINDOW = 10


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    # Every e2e request comes from 127.0.0.1, and the API fuzzing alone sends dozens of wrong credentials:
    # the per-address lockout is tested in tests/integration/test_token_attempts.py, not on this stack.
    # GeoPackages over 30 tiles fan out (items of 16): the sample scenes are small, and every bigger export
    # on this stack then goes through the Distributed Map (tests/e2e/test_fanout_e2e.py). Source changes
    # wake subscribed definitions CHANGE_WINDOW s later (5 minutes by default), so a test sees the coalesced
    # run soon; long enough that a burst's events, each delivered to a cold function on a busy CI machine,
    # all arrive within it. A VECTOR export's Clip reads pages of 2 features and ends after each page, so
    # every export of 2 or more goes round the state machine's Clip loop (resuming at its cursor).
    process, stack = start_stack(
        {
            "GEOEXPORT_PARAMETERS": (
                "TokenSourceLockThreshold=100000,FanOutTiles=30,FanOutItemTiles=16,"
                f"SourceChangeWindowSeconds={CHANGE_WINDOW},"
                "VectorSelectSeconds=0,VectorPageFeatures=2"
            )
        }
    )
    yield stack
    stop_stack(process)


@pytest.fixture(scope="session")
def faulty_service() -> Iterator[Service]:
    """A second stack whose Clip fails once per task (retried), whose Package waits 3 s (room to abort) and
    whose Upload hangs past its (shortened) timeout once per task (retried)."""
    process, stack = start_stack(
        {
            "GEOEXPORT_FAULTS": "Clip:transient:1,Package:delay:3,Upload:timeout:1",
            # 10 s: with 3 s the real (second) Upload run also timed out on a loaded CI machine.
            "GEOEXPORT_FUNCTION_TIMEOUTS": "UploadFunction=10",
            # Fault counts are per process (per container on AWS): with two function processes the
            # retry could run in the other one and fail again; one process makes "once per task" exact.
            "GEOEXPORT_FUNCTION_PROCESSES": "1",
        }
    )
    yield stack
    stop_stack(process)


@pytest.fixture(scope="session")
def broken_service() -> Iterator[Service]:
    """A third stack whose Package step always fails; webhook retries compressed from 25 h to 4 s."""
    process, stack = start_stack(
        {
            "GEOEXPORT_FAULTS": "Package:permanent",
            "GEOEXPORT_PARAMETERS": (
                "WebhookRetryBaseSeconds=0.5,WebhookRetryMaxDelaySeconds=1,WebhookRetryWindowSeconds=4"
            ),
        }
    )
    yield stack
    stop_stack(process)
