"""Durability benchmark (issue 11), whole processes as a user runs them:

1. Restart to ready: a data directory holding 1,000 tasks and 10,000 features (written through the
   service's own repositories into the running stack), the stack stopped, then `geoexport_local run`
   timed from exec to its `ready` line (median of 3 restarts). Goal: under 15 s on 2 cores.
2. What persistence costs: small exports end to end (POST -> COMPLETED, seen by polling) on a stack that
   saves every write (GEOEXPORT_PERSIST=on) and on one that keeps everything in memory (off), the two
   stacks alternating, median of each. Goal: at most 10% more with persistence.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from tests.e2e.conftest import Service, start_stack  # noqa: E402  (the stack exactly as `make run` starts it)
from tests.e2e.test_api_e2e import Z8, square  # noqa: E402
from tests.e2e.test_export_e2e import export_body  # noqa: E402

TASKS, FEATURES, RESTARTS, EXPORTS = 1_000, 10_000, 3, 5
LANDSAT = "4f65986c-0205-5599-b079-9fe14db4d1bd"


class Stack:
    """One data directory and its ports; started and stopped whole, as a user does."""

    def __init__(self, data_dir: Path, persist: bool = True) -> None:
        self.data_dir, self.persist = data_dir, persist
        self.ports: tuple[int, int] | None = None
        self.process: Any = None
        self.service: Service | None = None

    def start(self) -> float:
        """Seconds from exec to a stack that answers with a token."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        env = {"GEOEXPORT_PERSIST": "on" if self.persist else "off"}
        self.process, self.service = start_stack(env, self.data_dir, self.ports)
        self.ports = self.service.ports
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)

    @property
    def aws(self) -> str:
        assert self.service is not None
        return self.service.aws


def populate(stack: Stack) -> None:
    """1,000 tasks and 10,000 features, written by the service's repositories into the running stack."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    from geoexport import bootstrap
    from geoexport.features.feature import FeatureIn
    from geoexport.features.models import ModelIn
    from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
    from geoexport.settings import FeaturesSettings, TasksSettings
    from geoexport_local.template import read_stack

    def environment(function: str) -> dict[str, str]:  # what that function's settings read
        return {**read_stack(ROOT).functions[function].environment, "AWS_ENDPOINT_URL": stack.aws}

    tasks = bootstrap.task_repository(TasksSettings.from_environ(environment("CreateTaskFunction")))
    request = CreateExportTaskRequest.model_validate(export_body(LANDSAT, square(-78, 24, 1), 0.01))

    def task(_: int) -> None:
        now = datetime.now(UTC)
        record = TaskRecord(
            id=uuid.uuid4(),
            status=TaskStatus.PENDING,
            progress=0,
            request=request,
            createdAt=now,
            updatedAt=now,
        )
        tasks.create(record, quota=10**15)
        tasks.advance(record.id, TaskStatus.FAILED, now, errorReason="bench", finishedAt=now)

    feature_settings = FeaturesSettings.from_environ(environment("FeaturesFunction"))
    features = bootstrap.feature_service(feature_settings)
    models = bootstrap.model_service(feature_settings)
    models.register(ModelIn.model_validate({"name": "bench", "schema": {"type": "object"}}), "demo-client")

    def feature(i: int) -> None:
        body = FeatureIn.model_validate(
            {
                "id": f"f{i}",
                "type": "Feature",
                "model": "bench",
                "entityType": "DATA",
                "geometry": {"type": "Point", "coordinates": [-170 + (i * 37) % 340, -80 + (i * 17) % 160]},
                "properties": {"n": i},
            }
        )
        features.create(body, "demo-client")

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(task, range(TASKS)))
        list(pool.map(feature, range(FEATURES)))
    print(f"  stored {TASKS} tasks and {FEATURES} features in {time.monotonic() - started:.0f} s", flush=True)


def export_latency(stack: Stack, index: int) -> float:
    """POST -> COMPLETED of a small export (a new ROI each time: no dedupe)."""
    assert stack.service is not None
    x = -78.2 + 0.05 * index + (0.0 if stack.persist else 0.025)
    started = time.monotonic()
    status, task, _ = stack.service.request(
        "POST", "/export-tasks", export_body(LANDSAT, square(x, 24.3, 0.1), Z8)
    )
    assert status == 201, task
    assert stack.service.wait(task["id"], 120)[-1]["status"] == "COMPLETED"
    return time.monotonic() - started


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="geoexport-bench-durable-"))
    print("restart to ready with a full data directory")
    stack = Stack(work / "full")
    stack.start()
    populate(stack)
    stack.stop()
    restarts = []
    for _ in range(RESTARTS):
        restarts.append(stack.start())
        stack.stop()
    median = statistics.median(restarts)
    print(f"  restart to ready: median {median:.1f} s of {[round(r, 1) for r in restarts]} (goal < 15 s)")

    print("small exports end to end, persistence on vs off (alternating)")
    on, off = Stack(work / "on", persist=True), Stack(work / "off", persist=False)
    on.start()
    off.start()
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        for i in range(EXPORTS):
            for target in (on, off) if i % 2 == 0 else (off, on):
                times[target.persist].append(export_latency(target, i))
    finally:
        on.stop()
        off.stop()
    with_, without = statistics.median(times[True]), statistics.median(times[False])
    print(f"  persistence on:  median {with_:.2f} s {[round(t, 2) for t in times[True]]}")
    print(f"  persistence off: median {without:.2f} s {[round(t, 2) for t in times[False]]}")
    print(f"  ratio on/off: {with_ / without:.3f} (goal <= 1.10)")


if __name__ == "__main__":
    main()
