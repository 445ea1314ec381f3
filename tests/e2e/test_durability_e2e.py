"""Durable local stack (issue 11): everything accepted survives SIGKILL of the whole stack, and an export
that was running when it died ends (here: resumed to COMPLETED) with exactly one final callback."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Service, start_stack
from tests.e2e.test_api_e2e import Z8, landsat, square
from tests.e2e.test_auth_e2e import new_client
from tests.e2e.test_export_e2e import export_body
from tests.e2e.test_feature_files_e2e import put, stored_file, until
from tests.e2e.test_feature_requests_e2e import metadata, outcome, send_events
from tests.e2e.test_features_e2e import SCHEMA, city
from tests.support import Receiver, validate_gpkg

RETRIES = "WebhookRetryBaseSeconds=1,WebhookRetryMaxDelaySeconds=1,WebhookRetryWindowSeconds=600"


def kill_group(process: subprocess.Popen[str]) -> None:
    """``kill -9`` of the stack's whole process group, as a crash or an OOM kill would do it."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return bytes(answer.read())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_status(service: Service, task_id: str, wanted: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = service.request("GET", f"/export-tasks/{task_id}")[1]
        if task.get("status") == wanted or time.monotonic() > deadline:
            return task
        time.sleep(0.1)


def test_everything_survives_kill_9_and_the_running_export_is_resumed(
    receiver: Receiver, tmp_path: Path
) -> None:
    first, service = start_stack({"GEOEXPORT_FAULTS": "Package:delay:4", "GEOEXPORT_PARAMETERS": RETRIES})
    try:
        record = landsat(service)
        # A second client, and a token of each.
        other = new_client(service, f"durable-{uuid.uuid4().hex[:6]}")
        other_token = service.issue_token(other["client_id"], other["client_secret"])
        demo_token = service.token

        # Features: a model, a feature in two versions, a stored file.
        model = f"durable-{uuid.uuid4().hex[:8]}"
        assert service.request("POST", "/models", {"name": model, "schema": SCHEMA})[0] == 201
        data = b"kept across a crash " * 100
        body = {**city("Tromso", model, 18.95, 69.65), "files": [stored_file("survey.bin", data)]}
        status, created, _ = service.request("POST", "/features", body)
        assert status == 201, created
        assert put(created["uploads"][0], data) == 200
        assert until(service, created["urn"], "COMPLETE")["filesState"] == "COMPLETE"
        base = created["urn"].rsplit(":V", 1)[0]
        etag = service.request("GET", f"/features/{base}")[2]["ETag"]
        status, v2, _ = service.request(
            "PATCH", f"/features/{base}", {"properties": {"pop": 76000}}, extra_headers={"If-Match": etag}
        )
        assert status == 200 and v2["version"] == 2, v2

        # A feature request through the bus, with its outcome.
        request_id = f"durable-{uuid.uuid4().hex[:8]}"
        send_events(
            service,
            {
                "requestId": request_id,
                "requestType": "CREATE",
                "requestOwner": service.client_id,
                "metadata": metadata(),
                "feature": city("Alta", model, 23.27, 69.97),
            },
        )
        assert outcome(service, request_id)["state"] == "SUCCESS"

        # A finished export (its claim answers duplicates), one whose webhook keeps failing (a retry
        # pending in the queue), and one still running when the stack dies.
        done_body = export_body(record, square(-77.9, 24.3, 0.15), Z8, receiver.url("/done"))
        done = service.request("POST", "/export-tasks", done_body)[1]
        receiver.failing["/flaky"] = 10_000
        flaky = service.request(
            "POST",
            "/export-tasks",
            export_body(record, square(-77.6, 24.3, 0.15), Z8, receiver.url("/flaky")),
        )[1]
        finished = {t: service.wait(t, 60)[-1] for t in (done["id"], flaky["id"])}
        assert {t["status"] for t in finished.values()} == {"COMPLETED"}
        files = {a["name"]: download(a["url"]) for a in finished[done["id"]]["artifacts"]}
        old_link = finished[done["id"]]["artifacts"][0]["url"]
        deadline = time.monotonic() + 30
        while len([c for c in receiver.calls if c["path"] == "/flaky"]) < 2:  # first try and one retry
            assert time.monotonic() < deadline
            time.sleep(0.1)
        used_before = service.request("GET", "/storage")[1]["used"]

        running = service.request(
            "POST",
            "/export-tasks",
            export_body(record, square(-77.3, 24.3, 0.15), Z8, receiver.url("/final")),
        )[1]
        assert wait_status(service, running["id"], "IN_PROGRESS")["status"] == "IN_PROGRESS"
        time.sleep(1.0)  # inside the Package step's 4 s delay
        kill_group(first)
    finally:
        if first.poll() is None:
            kill_group(first)

    second, again = start_stack({"GEOEXPORT_PARAMETERS": RETRIES}, service.data_dir, service.ports)
    try:
        # The same demo client and signing key: tokens issued before the crash still work.
        assert again.client_secret == service.client_secret
        assert again.request("GET", f"/export-tasks/{done['id']}", token=demo_token)[0] == 200
        assert again.request("GET", "/export-tasks", token=other_token)[0] == 200
        assert again.issue_token(other["client_id"], other["client_secret"])

        # The interrupted export is resumed and completes, with exactly one final callback.
        resumed = again.wait(running["id"], 90)[-1]
        assert resumed["status"] == "COMPLETED", resumed
        for artifact in resumed["artifacts"]:
            assert sha256(download(artifact["url"])) == artifact["sha256"]
        time.sleep(2)
        finals = [c for c in receiver.calls if c["path"] == "/final"]
        assert [c["body"]["event"] for c in finals] == ["TASK_COMPLETED"], finals

        # The finished export: byte-identical artifacts through fresh links and the link from before.
        task = again.request("GET", f"/export-tasks/{done['id']}")[1]
        assert task["status"] == "COMPLETED"
        for artifact in task["artifacts"]:
            assert sha256(download(artifact["url"])) == sha256(files[artifact["name"]]) == artifact["sha256"]
        assert sha256(download(old_link)) == sha256(files[task["artifacts"][0]["name"]])
        gpkg = tmp_path / "kept.gpkg"
        gpkg.write_bytes(files[task["artifacts"][0]["name"]])
        validate_gpkg(gpkg)
        assert [c["body"]["event"] for c in receiver.calls if c["path"] == "/done"] == ["TASK_COMPLETED"]

        # Its dedupe claim answers the same request again.
        status, duplicate, _ = again.request("POST", "/export-tasks", done_body)
        assert status == 200 and duplicate["id"] == done["id"] and duplicate["isDuplicated"] is True

        # The pending webhook retry survived in the queue: once the receiver answers, it is delivered.
        receiver.failing["/flaky"] = 0
        deadline = time.monotonic() + 30
        while not any(c["path"] == "/flaky" and c["status"] == 204 for c in receiver.calls):
            assert time.monotonic() < deadline, [c["status"] for c in receiver.calls if c["path"] == "/flaky"]
            time.sleep(0.2)
        deliveries = again.request("GET", f"/export-tasks/{flaky['id']}")[1]["webhookDeliveries"]
        assert deliveries[0]["outcome"] == "delivered" and deliveries[0]["attempts"] >= 3, deliveries

        # Features, versions, the model, the stored file and the request outcome.
        assert again.request("GET", f"/models/{model}")[0] == 200
        current = again.request("GET", f"/features/{base}")[1]
        assert current["version"] == 2 and current["properties"]["pop"] == 76000
        assert again.request("GET", f"{'/features/'}{base}:V1")[1]["version"] == 1
        assert current["filesState"] == "COMPLETE" and current["files"][0]["state"] == "STORED"
        assert again.request("GET", f"/requests/{request_id}")[1]["state"] == "SUCCESS"

        # Nothing is left running, nothing stays reserved, the ledger counts what is stored.
        listed = again.request("GET", "/export-tasks?limit=100")[1]["items"]
        assert not [t for t in listed if t["status"] in ("PENDING", "IN_PROGRESS")]
        storage = again.request("GET", "/storage")[1]
        assert storage["reserved"] == 0
        assert storage["used"] == used_before + sum(a["size"] for a in resumed["artifacts"])

        # A graceful stop loses nothing either. It ends by itself; no bound on how fast (5 s was exceeded
        # under CI load, and a timing bound would be a timed assertion).
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    finally:
        if second.poll() is None:
            kill_group(second)


def read(service: Service, path: str) -> tuple[int, Any]:
    """GET as a client does under its usage plan's rate (50/s, burst 100): a 429 is retried after a pause
    (API Gateway's throttling answer carries no Retry-After). Reading back hundreds of features at once
    ran past the burst on a fast machine."""
    deadline = time.monotonic() + 60
    while True:
        status, body, _ = service.request("GET", path)
        if status != 429 or time.monotonic() > deadline:  # still throttled after a minute: that is the answer
            return status, body
        time.sleep(0.5)


def test_random_kills_during_a_burst_of_writes_leave_a_consistent_store(tmp_path: Path) -> None:
    """Features are written as fast as the API takes them while the stack is killed at random moments;
    after each restart every feature that was acknowledged is there, found by its id and by the spatial
    index (one transaction writes both), and the state database passes SQLite's integrity check."""
    rng = random.Random(11)
    process, service = start_stack({})
    model = f"burst-{uuid.uuid4().hex[:8]}"
    assert service.request("POST", "/models", {"name": model, "schema": SCHEMA})[0] == 201
    acknowledged: dict[str, tuple[float, float]] = {}
    data_dir, ports = service.data_dir, service.ports
    try:
        for round_ in range(3):
            stop = threading.Event()

            def writer(
                service: Service = service, round_: int = round_, stop: threading.Event = stop
            ) -> None:
                i = 0
                while not stop.is_set() and i < 400:
                    name = f"r{round_}n{i}"
                    lon, lat = rng.uniform(-170, 170), rng.uniform(-80, 80)
                    try:
                        status, answer, _ = service.request("POST", "/features", city(name, model, lon, lat))
                    except OSError:
                        return  # the stack died under this request: not acknowledged
                    if status == 201:
                        acknowledged[answer["urn"].rsplit(":V", 1)[0]] = (lon, lat)
                    i += 1

            thread = threading.Thread(target=writer)
            thread.start()
            time.sleep(rng.uniform(0.5, 2.5))
            kill_group(process)
            stop.set()
            thread.join(60)
            with sqlite3.connect(data_dir / "state.sqlite") as db:  # type: ignore[operator]
                assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            process, service = start_stack({}, data_dir, ports)
            for urn, (lon, lat) in acknowledged.items():
                status, feature = read(service, f"/features/{urn}")
                assert status == 200, (urn, feature)
                assert feature["geometry"]["coordinates"] == pytest.approx([lon, lat])
            found: set[str] = set()
            token = ""
            while True:
                query = f"/features?bbox=-180,-90,180,90&model={model}&limit=100"
                answer = read(service, query + (f"&nextToken={token}" if token else ""))[1]
                found.update(item["urn"].rsplit(":V", 1)[0] for item in answer["items"])
                token = answer.get("nextToken") or ""
                if not token:
                    break
            assert set(acknowledged) <= found, sorted(set(acknowledged) - found)[:5]
            print(f"round {round_}: {len(acknowledged)} acknowledged features kept", flush=True)
        assert len(acknowledged) > 0
    finally:
        if process.poll() is None:
            kill_group(process)
    # The store is still the same directory: what it holds is readable as JSON rows.
    with sqlite3.connect(Path(str(data_dir)) / "state.sqlite") as db:
        rows = db.execute("SELECT item FROM ddb LIMIT 5").fetchall()
    assert all(isinstance(json.loads(row[0]), dict) for row in rows)


def children_running(process: subprocess.Popen[str], command: str) -> list[int]:
    """The pids of the main process's children running ``python -m geoexport_local <command>``. Its
    request threads come and go while this reads: a thread (or a child) gone meanwhile is skipped."""
    found = []
    for task in Path(f"/proc/{process.pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for pid in (task / "children").read_text().split():
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if f"geoexport_local\x00{command}\x00".encode() in command_line:
                        found.append(int(pid))
    return found


def emulator_of(process: subprocess.Popen[str]) -> int:
    """The pid of the stack's emulator process (the main process's one child running it)."""
    found = children_running(process, "emulate")
    assert len(found) == 1, found
    return found[0]


def gone(pid: int, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True  # exited, not yet reaped
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on (IPv4 addresses as dotted quads)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                quad = ".".join(str(b) for b in reversed(bytes.fromhex(address)))
                found.add((quad if len(address) == 8 else address, int(port, 16)))
    return found


def wait_for_line(service: Service, text: str) -> None:
    deadline = time.monotonic() + 10  # the output is read by a thread of its own
    while not any(text in line for line in service.output):
        assert time.monotonic() < deadline, service.output[-5:]
        time.sleep(0.1)


def test_the_processes_of_the_stack_live_and_die_together() -> None:
    """The emulator runs in a process of its own, the handlers in function processes (two here); all listen
    on loopback only (the API, the emulator, the function processes' and the main process's invoke ports).
    ``kill -9`` of only the main process (not its group) takes the others with it, so the data directory and
    the ports are free for the next start, which keeps what was acknowledged; a SIGTERM to the group stops
    them all cleanly (the main process first); a dead emulator or function process stops the main process
    instead of leaving an API that answers 5xx."""
    two = {"GEOEXPORT_FUNCTION_PROCESSES": "2"}
    process, service = start_stack(two)
    try:
        model = f"pair-{uuid.uuid4().hex[:8]}"
        assert service.request("POST", "/models", {"name": model, "schema": SCHEMA})[0] == 201
        status, created, _ = service.request("POST", "/features", city("Bodo", model, 14.4, 67.28))
        assert status == 201, created
        emulator = emulator_of(process)
        hosts = children_running(process, "functions")
        assert len(hosts) == 2, hosts
        sockets = listening(process.pid) | listening(emulator)
        for host in hosts:
            served = listening(host)
            assert served, f"function process {host} serves no invoke port"
            sockets |= served
        assert {port for _, port in sockets} >= set(service.ports), sockets
        assert {address for address, _ in sockets} == {"127.0.0.1"}, sockets  # loopback only
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        assert gone(emulator), "the emulator process outlived the main process"
        assert all(gone(host) for host in hosts), "a function process outlived the main process"

        process, service = start_stack(two, service.data_dir, service.ports)
        status, feature = read(service, f"/features/{created['urn']}")
        assert status == 200 and feature["properties"]["name"] == "Bodo", feature
        emulator, hosts = emulator_of(process), children_running(process, "functions")
        os.killpg(process.pid, signal.SIGTERM)  # as a supervisor or `timeout` stops a process group
        assert process.wait(30) == 0
        assert gone(emulator) and all(gone(host) for host in hosts)
        wait_for_line(service, "geoexport stopped")
        assert not any("process stopped" in line for line in service.output)

        process, service = start_stack(two, service.data_dir, service.ports)
        os.kill(emulator_of(process), signal.SIGKILL)
        assert process.wait(30) == 1
        wait_for_line(service, "the emulator process stopped")

        process, service = start_stack(two, service.data_dir, service.ports)
        os.kill(children_running(process, "functions")[1], signal.SIGKILL)  # as an out-of-memory kill
        assert process.wait(30) == 1
        wait_for_line(service, "a function process stopped")
    finally:
        if process.poll() is None:
            kill_group(process)
