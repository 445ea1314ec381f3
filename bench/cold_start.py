"""Cold start of every API function: `import app` and its first request, as Lambda would run them.

For each function behind API Gateway (and the authorizer), a fresh isolated interpreter gets only what
Lambda gives it: the built function (`sam build` output), its layers' python/ and the runtime's boto3. It
imports the handler (its cold import) and answers the function's sample event from events/ (its first
request: the first AWS clients are built and the first calls made) against a moto server provisioned from
the same tree's template.yaml and seeded with a client, a catalog record and a task. Medians of N runs.

    python bench/cold_start.py [--runs 5] [--tree DIR ...] [--events DIR]

``--tree`` (repeatable) measures checkouts side by side, alternating run by run (e.g. `git worktree add
/tmp/before <commit>`, `sam build` there, then `--tree /tmp/before --tree .`): each with its own build,
template, code and emulator; the events are this tree's. Repeated runs send the same request again, so a
create after the first is answered by dedupe and an abort by 409, the same in every tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
TASK = "3f1c8a52-6a3e-4b8e-9a55-1d2c3b4a5e6f"
RECORD = "0b6e1a4c-2f0d-4b7e-8d8a-1e9b2c3d4e5f"

PROBE = r"""
import json, sys, time
sys.path[:0] = sys.argv[2:]
started = time.perf_counter()
import app
imported = time.perf_counter()
class Context:
    function_name = "bench"; memory_limit_in_mb = 256; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    def get_remaining_time_in_millis(self): return 60000
event = json.loads(open(sys.argv[1]).read())
try:
    answer = app.lambda_handler(event, Context())
    status = answer.get("statusCode") if isinstance(answer, dict) else None
except Exception as error:
    status = type(error).__name__
done = time.perf_counter()
print(json.dumps({"import": (imported - started) * 1000, "first": (done - imported) * 1000,
                  "status": status}))
"""


def runtime_dir() -> Path:
    """What the Lambda runtime adds (the build tier's list): boto3 and its dependencies."""
    import boto3

    from tests.build.test_lambda_sizes import RUNTIME_PACKAGES

    site = Path(boto3.__file__).parent.parent
    runtime = Path(tempfile.mkdtemp(prefix="lambda-runtime-"))
    for name in RUNTIME_PACKAGES:
        (runtime / name).symlink_to(site / name)
    return runtime


def seed(stack: Any, endpoint: str, events: Path, into: Path) -> Path:
    """A client, a catalog record and a task the client owns; answers a copy of the events directory whose
    authorizer event carries a valid token (the other events carry the authorizer's answer already)."""
    import shutil
    import time
    from datetime import UTC, datetime

    from geoexport.auth import tokens
    from geoexport.auth.clients import ClientRepository
    from geoexport.auth.service import AUDIENCE, ISSUER
    from geoexport.catalog.repository import CatalogRepository
    from geoexport.models import CatalogRecord, CreateExportTaskRequest, TaskRecord, TaskStatus
    from geoexport.tasks.repository import TaskRepository
    from geoexport_local.emulator import client

    dynamodb = client("dynamodb", endpoint, stack.region)
    ClientRepository(dynamodb, stack.physical["ClientsTable"]).create(
        "demo", client_id="demo-client", client_secret="s3cret-from-the-cli"
    )
    footprint = {"type": "Polygon", "coordinates": [[[-78, 24], [-77, 24], [-77, 25], [-78, 25], [-78, 24]]]}
    CatalogRepository(dynamodb, stack.physical["CatalogTable"]).put(
        CatalogRecord.model_validate(
            {
                "id": RECORD,
                "name": "sample",
                "footprint": footprint,
                "maxResolutionDeg": 0.0001,
                "crs": "EPSG:4326",
                "bands": 3,
                "dtype": "uint8",
                "width": 10,
                "height": 10,
                "source": {"bucket": "b", "key": "k.tif"},
            }
        )
    )
    create = json.loads(json.loads((events / "create_task.json").read_text())["body"])
    now = datetime.now(UTC)
    TaskRepository(dynamodb, stack.physical["TasksTable"]).create(
        TaskRecord(
            id=TASK,
            status=TaskStatus.IN_PROGRESS,
            progress=10,
            request=CreateExportTaskRequest.model_validate(create),
            createdAt=now,
            updatedAt=now,
            owner="demo-client",
        )
    )
    secret = next(iter(stack.secrets))
    key = client("secretsmanager", endpoint, stack.region).get_secret_value(SecretId=secret)["SecretString"]
    claims = {
        "sub": "demo-client",
        "scope": "exports:read exports:write",
        "iat": int(time.time()),
        "exp": int(time.time()) + 3600,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    copy = into / "events"
    shutil.copytree(events, copy)
    authorizer = json.loads((copy / "authorizer.json").read_text())
    authorizer["authorizationToken"] = f"Bearer {tokens.encode(claims, key.encode())}"
    (copy / "authorizer.json").write_text(json.dumps(authorizer))
    return copy


class Tree:
    """One checkout's build and template, run against the shared emulator (moto keeps one state per
    process, and every tree names its resources alike: the stack's name and logical ids)."""

    def __init__(self, root: Path, endpoint: str, events: Path, runtime: Path) -> None:
        from geoexport_local.template import load_yaml, read_stack

        self.root = root
        self.build = root / ".aws-sam" / "build"
        template = load_yaml(self.build / "template.yaml")
        self.resources = template["Resources"]
        self.globals = template.get("Globals", {}).get("Function", {})
        self.stack = read_stack(root)
        self.endpoint = endpoint
        self.runtime = runtime
        self.events = events

    def api_functions(self) -> set[str]:
        routes = self.stack.routes
        return {route.function for route in routes} | {r.authorizer for r in routes if r.authorizer}

    def run(self, name: str) -> dict[str, Any] | str:
        """One cold start of ``name``: its import and first-request milliseconds (or why it failed)."""
        function = self.resources[name]
        path = [str(self.build / function["Properties"]["CodeUri"])]
        for layer in [*self.globals.get("Layers", []), *function["Properties"].get("Layers", [])]:
            path.append(str(self.build / self.resources[layer["Ref"]]["Properties"]["ContentUri"] / "python"))
        path.append(str(self.runtime))
        event = self.events / f"{Path(self.stack.functions[name].code_dir).name}.json"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "AWS_REGION": self.stack.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": self.endpoint,
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_METRICS_DISABLED": "true",
            **self.stack.functions[name].environment,
        }
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", PROBE, str(event), *path],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.runtime,
            timeout=120,
            check=False,
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith('{"import"')]
        if not lines:
            return f"failed: {out.stderr.strip().splitlines()[-1:]}"
        answer: dict[str, Any] = json.loads(lines[-1])
        return answer


def measure(trees: list[Path], events: Path, runs: int) -> None:
    """Each API function in each tree, alternating tree by tree, ``runs`` times; prints the medians."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    from geoexport_local.emulator import provision, start_moto, wait_until_up
    from geoexport_local.template import read_stack
    from tests.support import free_port

    runtime = runtime_dir()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = start_moto("127.0.0.1", port)
    stack = read_stack(trees[-1])
    wait_until_up(endpoint, stack.region)
    provision(stack, endpoint)
    seeded = seed(stack, endpoint, events, Path(tempfile.mkdtemp(prefix="events-")))
    built = [Tree(root, endpoint, seeded, runtime) for root in trees]
    try:
        names = sorted(set.intersection(*(tree.api_functions() for tree in built)))
        header = "".join(f" | {tree.root.name[:18]:>18s} import / first ms" for tree in built)
        print(f"{'function':28s}{header}", flush=True)
        for name in names:
            samples: list[list[dict[str, Any]]] = [[] for _ in built]
            failure = ""
            for _ in range(runs):
                for index, tree in enumerate(built):
                    answer = tree.run(name)
                    if isinstance(answer, str):
                        failure = f"{tree.root}: {answer}"
                    else:
                        samples[index].append(answer)
            cells = []
            for runs_of_tree in samples:
                if not runs_of_tree:
                    cells.append(f" | {'-':>35s}")
                    continue
                imported = statistics.median(r["import"] for r in runs_of_tree)
                first = statistics.median(r["first"] for r in runs_of_tree)
                cells.append(f" | {imported:14.0f} / {first:5.0f} ({runs_of_tree[-1]['status']})")
            print(f"{name:28s}{''.join(cells)}{'  ' + failure if failure else ''}", flush=True)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", type=Path, action="append", help="a checkout to measure (repeatable)")
    parser.add_argument("--events", type=Path, default=HERE / "events")
    args = parser.parse_args()
    sys.path[:0] = [str(HERE)]
    sys.path[:0] = [str(HERE / "infra" / "local")]
    measure([tree.resolve() for tree in args.tree or [HERE]], args.events.resolve(), args.runs)


if __name__ == "__main__":
    main()
