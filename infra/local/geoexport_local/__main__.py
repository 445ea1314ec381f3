"""``python -m geoexport_local run``: the whole service on loopback, in the foreground."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
DEMO_CLIENT_ID = "demo-client"


def _root(value: str | None) -> Path:
    if value:
        return Path(value).resolve()
    here = Path.cwd()
    if (here / "template.yaml").exists():
        return here
    return Path(__file__).resolve().parents[3]


def _current_feature_index(stack: Any, endpoint: str) -> None:
    """Features kept by an older layout of the index are indexed again before the API opens."""
    from geoexport.features.repository import FeatureIndex, FeatureRepository
    from geoexport.features.service import reindex
    from geoexport_local.emulator import client

    db, table = client("dynamodb", endpoint, stack.region), stack.physical["FeaturesTable"]
    rebuilt = reindex(FeatureRepository(db, table), FeatureIndex(db, table))
    if rebuilt:
        print(f"feature index rebuilt for {rebuilt} features (its layout changed)", flush=True)


def _quiet_collector() -> None:
    """The emulator holds every item as many small Python objects, and each full garbage collection walks
    them all: a 3 s stall of every request at 20,000 features, 7 s at 100,000. Every FREEZE_EVERY seconds
    what is alive is moved out of the collector's sight (gc.freeze; reference counting still frees it),
    after one collection of what came since the last freeze (which also frees the cyclic garbage a freeze
    would otherwise keep), so a collection only ever walks a few seconds of objects; young generations are
    collected less often. Every minute instead (as before): 16% of the emulator's samples were collections
    while features loaded, and loading ran ~15% slower (6,000 features, 4 clients). Every second rather
    than every 5: the same objects are walked, in stalls a fifth as long (each walked ~80,000 objects, not
    ~400,000, while features loaded); 8,000 features, 8 clients, alternating: 978 -> 1,032/s (medians of 3,
    within the machine's noise, never slower)."""
    import time

    gc.set_threshold(50_000, 20, 100)

    def freeze() -> None:
        while True:
            time.sleep(FREEZE_EVERY)
            gc.collect()
            gc.freeze()

    threading.Thread(target=freeze, name="gc-freeze", daemon=True).start()


#: Seconds between two freezes of the collector's objects (see _quiet_collector).
FREEZE_EVERY = 1.0


def run(args: argparse.Namespace) -> int:
    """The stack's main process: the API gateway, the event sources and schedules. The emulator (moto and
    the durable state) runs in a process of its own (:func:`emulate`), the handlers in a few function
    processes (:func:`host_functions`), so that each has a core; a handler reaches the emulator over
    HTTP, as on AWS."""
    root = _root(args.root)
    aws_port = int(args.aws_port or os.environ.get("GEOEXPORT_AWS_PORT", "4566"))
    api_port = int(args.api_port or os.environ.get("GEOEXPORT_API_PORT", "3000"))
    endpoint = f"http://{LOOPBACK}:{aws_port}"
    _emulated_environment(endpoint)
    _quiet_collector()

    from geoexport.auth.usage import UsagePlans
    from geoexport.catalog.repository import CatalogRepository
    from geoexport_local.emulator import client
    from geoexport_local.functions import ProcessHost, serve_invokes
    from geoexport_local.gateway import make_server
    from geoexport_local.seed import seed_catalog
    from geoexport_local.usage import UsageMeter

    data_dir = data_directory(root)
    stack = _local_stack(root, args.render_threads)
    stop = threading.Event()
    # The function processes import every handler while the emulator restores the saved state.
    starting = _start_function_processes(root, aws_port, args.render_threads, _function_processes(), stop)
    functions = ProcessHost(stack)
    invokes = serve_invokes(LOOPBACK, functions)
    emulator, lifeline, restored = _start_emulator(
        root, aws_port, f"http://{LOOPBACK}:{invokes.server_port}", stop
    )
    functions.attach([f"http://{LOOPBACK}:{port}" for port in starting()])
    stack.physical.update(restored["physical"])
    _current_feature_index(stack, endpoint)
    records = seed_catalog(
        root / "infra" / "sample-data",
        client("s3", endpoint, stack.region),
        stack.physical["SourcesBucket"],
        CatalogRepository(client("dynamodb", endpoint, stack.region), stack.physical["CatalogTable"]),
    )
    _run_events(stack, functions, endpoint, stop)
    state = Path(os.environ.get("GEOEXPORT_STATE") or data_dir / "local.json").resolve()
    apigateway = client("apigateway", endpoint, stack.region)
    plan_ids = {
        logical.removesuffix("UsagePlan").lower(): stack.physical[logical] for logical in stack.usage_plans
    }
    demo = _demo_client(
        client("dynamodb", endpoint, stack.region), stack, UsagePlans(apigateway, plan_ids), state
    )
    api = make_server(LOOPBACK, api_port, functions, UsageMeter(apigateway))
    threading.Thread(target=api.serve_forever, name="api", daemon=True).start()
    # Exports that were running when the last run stopped: resumed or failed, by the same function
    # that AWS runs on its schedule (no grace: nothing of the last run is still in flight).
    if stack.reconciler:
        functions.invoke(stack.reconciler, json.dumps({"graceSeconds": 0, "reason": "restart"}).encode())
    print(
        f"data: {data_dir} ({restored['items']} items, {restored['objects']} objects, {restored['messages']} "
        f"queued messages restored in {restored['seconds']:.1f} s; `make clean-data` wipes it)",
        flush=True,
    )
    _announce(state, f"http://{LOOPBACK}:{api_port}", endpoint, demo, stack, plan_ids, records)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    api.shutdown()
    os.close(lifeline)  # the emulator stops (it saves nothing on the way out: every write is saved)
    with contextlib.suppress(subprocess.TimeoutExpired):
        emulator.wait(20)
    print("geoexport stopped", flush=True)
    sys.stdout.flush()
    os._exit(0)  # handler threads still in a step are cut, as a stopped Lambda would be; state is saved


def _start_emulator(
    root: Path, aws_port: int, invokes: str, stop: threading.Event
) -> tuple[subprocess.Popen[bytes], int, dict[str, Any]]:
    """Start :func:`emulate` and wait until it serves the template's resources with the saved state;
    (the process, its lifeline, what it restored). Closing the lifeline stops it. If it fails to start,
    or stops while this process runs, so does this process (it has said why on the shared stderr)."""
    read_end, write_end = os.pipe()
    lifeline_end, lifeline = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", "geoexport_local", "emulate", "--root", str(root), "--aws-port", str(aws_port),
         "--invokes", invokes, "--ready-fd", str(write_end), "--lifeline-fd", str(lifeline_end),
         "--parent", str(os.getpid())],
        pass_fds=(write_end, lifeline_end),
    )  # fmt: skip
    os.close(write_end)
    os.close(lifeline_end)
    with os.fdopen(read_end) as ready:
        line = ready.readline()
    if not line:
        raise SystemExit(process.wait() or 1)

    def watch() -> None:
        code = process.wait()
        if not stop.is_set():
            print(f"geoexport: the emulator process stopped (exit {code}); stopping", file=sys.stderr)
            sys.stderr.flush()
            os._exit(1)

    threading.Thread(target=watch, name="emulator-watch", daemon=True).start()
    return process, lifeline, json.loads(line)


#: Function processes when GEOEXPORT_FUNCTION_PROCESSES does not say: one per core, at most this many.
MAX_FUNCTION_PROCESSES = 4


def _function_processes() -> int:
    value = os.environ.get("GEOEXPORT_FUNCTION_PROCESSES", "")
    if not value:
        return max(1, min(os.cpu_count() or 1, MAX_FUNCTION_PROCESSES))
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"GEOEXPORT_FUNCTION_PROCESSES: {value!r} is not a number of processes (1 or more)")
    return int(value)


def _start_function_processes(
    root: Path, aws_port: int, render_threads: int, count: int, stop: threading.Event
) -> Callable[[], list[int]]:
    """Start ``count`` :func:`host_functions` processes; returns a call that waits until each has imported
    every handler and gives their invoke ports. They die with this process (a ``kill -9`` of it too). If one
    fails to start, or stops while this process runs, this process stops (it has said why on stderr)."""
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    for _ in range(count):
        read_end, write_end = os.pipe()
        process = subprocess.Popen(
            [sys.executable, "-m", "geoexport_local", "functions", "--root", str(root),
             "--aws-port", str(aws_port), "--render-threads", str(render_threads),
             "--ready-fd", str(write_end), "--parent", str(os.getpid())],
            pass_fds=(write_end,),
        )  # fmt: skip
        os.close(write_end)
        started.append((process, read_end))

    def ports() -> list[int]:
        found = []
        for process, read_end in started:
            with os.fdopen(read_end) as ready:
                line = ready.readline()
            if not line:
                raise SystemExit(process.wait() or 1)
            found.append(int(line))
            threading.Thread(target=watch, args=(process,), name="functions-watch", daemon=True).start()
        return found

    def watch(process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        if not stop.is_set():
            print(f"geoexport: a function process stopped (exit {code}); stopping", file=sys.stderr)
            sys.stderr.flush()
            os._exit(1)

    return ports


#: The function processes' priority below the emulator's and the gateway's: on AWS the functions do not
#: share cores with DynamoDB or S3; here, when the cores are short, the emulator (which every function
#: waits for) goes first. Restart to ready with a full data directory: 14.6 -> 13.0 s (medians of 3,
#: alternating; the handlers' imports no longer slow the emulator's restore); loading features no slower.
FUNCTION_NICENESS = 10


def host_functions(args: argparse.Namespace) -> int:
    """A function process: an execution environment of every handler of the template, imported before it
    says it is ready (on ``--ready-fd``, its invoke port), more as invocations overlap. It dies with the
    main process, which alone answers signals to the group (it stops first, as with the emulator)."""
    _die_with(int(args.parent))
    os.nice(FUNCTION_NICENESS)
    _emulated_environment(f"http://{LOOPBACK}:{args.aws_port}")
    _quiet_collector()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)

    from geoexport_local.functions import FunctionHost, serve_invokes

    functions = FunctionHost(_local_stack(_root(args.root), args.render_threads))
    server = serve_invokes(LOOPBACK, functions)
    functions.load_all()
    os.write(int(args.ready_fd), f"{server.server_port}\n".encode())
    os.close(int(args.ready_fd))
    threading.Event().wait()  # serves until the main process ends (its death signal ends this one)
    return 0


def emulate(args: argparse.Namespace) -> int:
    """The emulator process: moto's server on ``--aws-port`` with the template's resources, every accepted
    write saved in the data directory first, Lambda invokes sent to the main process (``--invokes``).
    It stops when the main process closes its lifeline, and dies with the main process (a ``kill -9`` of
    it too); signals to the process group (a terminal's Ctrl-C, a SIGTERM to the group) are left to the main
    process, which then closes the lifeline: the emulator never stops first."""
    _die_with(int(args.parent))
    root = _root(args.root)
    endpoint = f"http://{LOOPBACK}:{args.aws_port}"
    _emulated_environment(endpoint)
    _quiet_collector()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # the main process stops this one

    from geoexport_local.durable import DURABLE, StateStore, restore, restore_backends
    from geoexport_local.emulator import dispatch_lambda_to, provision, start_moto, wait_until_up
    from geoexport_local.functions import RemoteFunctions

    store = StateStore(data_directory(root), wait=10.0)  # a killed stack's emulator may still be exiting
    stack = _local_stack(root, 0)
    moto = start_moto(LOOPBACK, int(args.aws_port), stack.region)
    wait_until_up(endpoint, stack.region)
    if os.environ.get("GEOEXPORT_PERSIST", "on") != "off":  # off: in memory only (the bench's baseline)
        restore_backends(store, stack.region)  # secrets, buses and rules, usage plans and keys
        DURABLE.store = store
    dispatch_lambda_to(RemoteFunctions(args.invokes))
    provision(stack, endpoint)
    restored = restore(store, stack.region)  # items, objects, messages into the template's resources
    done = json.dumps(
        {
            "items": restored.items,
            "objects": restored.objects,
            "messages": restored.messages,
            "seconds": restored.seconds,
            "physical": {k: stack.physical[k] for k in stack.usage_plans},  # ids the emulator made
        }
    )
    os.write(int(args.ready_fd), done.encode() + b"\n")
    os.close(int(args.ready_fd))
    while os.read(int(args.lifeline_fd), 1):  # nothing is written: it returns when the main process closes it
        pass
    moto.stop()
    store.close()
    os._exit(0)


def _die_with(parent: int) -> None:
    """Linux's parent-death signal: when the main process ends, however it ends, this one is killed."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the signal was set
        os._exit(1)


def _local_stack(root: Path, render_threads: int) -> Any:
    """template.yaml as the local stack runs it: loopback webhooks allowed, and the test overrides."""
    from geoexport_local.template import read_stack

    # Local receivers live on this machine: loopback callbacks (and plain http) are allowed here only.
    overrides = {"WebhookAllowLoopback": "true", "WebhookHttpsOnly": "false"}
    overrides.update(parameter_overrides(os.environ.get("GEOEXPORT_PARAMETERS", "")))
    stack = read_stack(root, overrides=overrides)
    for logical_id, seconds in parameter_overrides(os.environ.get("GEOEXPORT_FUNCTION_TIMEOUTS", "")).items():
        stack.functions[logical_id].timeout = int(seconds)  # tests shorten a step's timeout to provoke it
    if render_threads:
        for function in stack.functions.values():
            function.environment["RENDER_THREADS"] = str(render_threads)
    return stack


def _emulated_environment(endpoint: str) -> None:
    """The process is the 'cloud': every handler's boto3 and GDAL reach the emulator, dummy credentials."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        }
    )
    logging.basicConfig(
        level=os.environ.get("GEOEXPORT_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", os.environ.get("GEOEXPORT_LOG_LEVEL", "WARNING"))


def _run_events(stack: Any, functions: Any, endpoint: str, stop: threading.Event) -> None:
    """EventBridge schedules, SQS and DynamoDB stream event source mappings of the template, and the
    Scheduler schedules the service creates at run time, as threads."""
    from geoexport_local import schedules
    from geoexport_local.emulator import poll_queue, poll_stream

    schedules.start(stack.schedule_groups, endpoint, stack.region, stop)  # the service's own schedules
    for logical_id, seconds in stack.schedules:
        threading.Thread(target=_every, args=(seconds, functions, logical_id), daemon=True).start()
    for mapping in stack.queue_events:
        threading.Thread(
            target=poll_queue,
            args=(mapping, functions, endpoint, stack.region, stop),
            name=f"sqs-{mapping.function}",
            daemon=True,
        ).start()
    for stream in stack.stream_events:
        ready = threading.Event()
        threading.Thread(
            target=poll_stream,
            args=(stream, functions, endpoint, stack.region, stop, ready),
            name=f"stream-{stream.function}",
            daemon=True,
        ).start()
        ready.wait(10)  # reading from the stream's end before the stack accepts work


def data_directory(root: Path) -> Path:
    """Where the local stack keeps its state: GEOEXPORT_DATA_DIR, else .geoexport/ in the project."""
    path = Path(os.environ.get("GEOEXPORT_DATA_DIR") or root / ".geoexport").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _demo_client(dynamodb: Any, stack: Any, plans: Any, state: Path) -> Any:
    """The demo client: the one of the last run (same id and secret) when the data directory has it."""
    from geoexport.auth.clients import ALL_SCOPES, CATALOG_WRITE, OPERATE, ClientRepository, NewClient

    clients = ClientRepository(dynamodb, stack.physical["ClientsTable"])
    saved: dict[str, Any] = {}
    if state.exists():
        with contextlib.suppress(ValueError):
            saved = json.loads(state.read_text())
    existing = clients.get(DEMO_CLIENT_ID)
    if existing is not None and saved.get("client_id") == DEMO_CLIENT_ID and saved.get("client_secret"):
        return NewClient(existing, str(saved["client_secret"]))
    if existing is not None:  # its secret was lost with an unfinished first start: a new one
        dynamodb.delete_item(
            TableName=stack.physical["ClientsTable"], Key={"clientId": {"S": DEMO_CLIENT_ID}}
        )
    # The local operator's client: it may also replace catalog sources (catalog:write) and pause the
    # service (exports:operate).
    demo = clients.create("demo", (*ALL_SCOPES, CATALOG_WRITE, OPERATE), client_id=DEMO_CLIENT_ID)
    with contextlib.suppress(Exception):  # kept in the usage plan from the last run
        plans.enroll(demo.client.client_id, "standard")
    return demo


def _announce(
    state: Path,
    api_url: str,
    endpoint: str,
    demo: Any,
    stack: Any,
    plan_ids: dict[str, str],
    records: list[Any],
) -> None:
    """Write the state file the CLI and tests read, and say on stdout what is running."""
    state.parent.mkdir(parents=True, exist_ok=True)
    partial = state.with_suffix(".part")
    partial.write_text(
        json.dumps(
            {
                "api": api_url,
                "aws": endpoint,
                "client_id": demo.client.client_id,
                "client_secret": demo.client_secret,
                "webhook_secret": demo.client.webhook_secret,
                "clients_table": stack.physical["ClientsTable"],
                "features_table": stack.physical["FeaturesTable"],
                "usage_plans": plan_ids,
            },
            indent=2,
        )
    )
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, state)
    print(
        "webhooks: loopback receivers and http are allowed on this local stack (refused on AWS); "
        "private, link-local and metadata addresses stay refused",
        flush=True,
    )
    queues = ", ".join(mapping.queue_name for mapping in stack.queue_events)
    print(f"event buses: {', '.join(stack.event_buses)}; queues: {queues} (at {endpoint})", flush=True)
    print(
        f"demo client: id={demo.client.client_id} secret={demo.client_secret} "
        f"(saved in {state}; `geoexport token` prints a bearer token)",
        flush=True,
    )
    print(f"web tool: {api_url}/ (sign in with the demo client above) | API docs: {api_url}/docs", flush=True)
    print(
        f"geoexport ready: API {api_url} | AWS emulator {endpoint} | "
        f"catalog: {len(records)} records ({', '.join(r.name for r in records)})",
        flush=True,
    )


def parameter_overrides(spec: str) -> dict[str, str]:
    """``Name=Value,Name=Value`` (as ``sam deploy --parameter-overrides``) -> template parameter values."""
    overrides: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"GEOEXPORT_PARAMETERS: cannot read {item!r} (expected Name=Value)")
        overrides[name.strip()] = value.strip()
    return overrides


def _every(seconds: float, functions: object, logical_id: str) -> None:
    """Run a scheduled function on its template rate, as EventBridge would."""
    import time

    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    while True:
        time.sleep(seconds)
        functions.invoke(logical_id, json.dumps(event).encode())  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geoexport_local", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("run", help="start the emulator, the API and the sample catalog")
    start.add_argument("--root", help="project root (holds template.yaml); default: here")
    start.add_argument("--aws-port", type=int, help="emulator port (GEOEXPORT_AWS_PORT, default 4566)")
    start.add_argument("--api-port", type=int, help="API port (GEOEXPORT_API_PORT, default 3000)")
    start.add_argument("--render-threads", type=int, default=0, help="threads of the Package step")
    inner = sub.add_parser("emulate", help="(started by run) the emulator process")
    inner.add_argument("--root")
    inner.add_argument("--aws-port", type=int, required=True)
    inner.add_argument("--invokes", required=True, help="URL of the main process's function host")
    inner.add_argument("--ready-fd", type=int, required=True, help="written once the emulator is ready")
    inner.add_argument("--lifeline-fd", type=int, required=True, help="closed by the main process to stop it")
    inner.add_argument("--parent", type=int, required=True, help="the main process (this one dies with it)")
    hosted = sub.add_parser("functions", help="(started by run) a function process")
    hosted.add_argument("--root")
    hosted.add_argument("--aws-port", type=int, required=True)
    hosted.add_argument("--render-threads", type=int, default=0)
    hosted.add_argument("--ready-fd", type=int, required=True, help="its invoke port, once it is ready")
    hosted.add_argument("--parent", type=int, required=True, help="the main process (this one dies with it)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    if args.command == "functions":
        return host_functions(args)
    if args.command == "emulate":
        return emulate(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
