"""``python -m geoexport_local run``: the whole service on loopback, in the foreground."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def _root(value: str | None) -> Path:
    if value:
        return Path(value).resolve()
    here = Path.cwd()
    if (here / "template.yaml").exists():
        return here
    return Path(__file__).resolve().parents[3]


def run(args: argparse.Namespace) -> int:
    root = _root(args.root)
    aws_port = int(args.aws_port or os.environ.get("GEOEXPORT_AWS_PORT", "4566"))
    api_port = int(args.api_port or os.environ.get("GEOEXPORT_API_PORT", "3000"))
    endpoint = f"http://{LOOPBACK}:{aws_port}"
    # The process is the 'cloud': every handler's boto3 and GDAL reach the emulator with dummy credentials.
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

    from geoexport.auth.clients import ClientRepository
    from geoexport.auth.usage import UsagePlans
    from geoexport.catalog.repository import CatalogRepository
    from geoexport_local.emulator import (
        client,
        dispatch_lambda_to,
        poll_queue,
        provision,
        start_moto,
        wait_until_up,
    )
    from geoexport_local.functions import FunctionHost
    from geoexport_local.gateway import make_server
    from geoexport_local.seed import seed_catalog
    from geoexport_local.template import read_stack
    from geoexport_local.usage import UsageMeter

    # Local receivers live on this machine: loopback callbacks (and plain http) are allowed here only.
    overrides = {"WebhookAllowLoopback": "true", "WebhookHttpsOnly": "false"}
    overrides.update(parameter_overrides(os.environ.get("GEOEXPORT_PARAMETERS", "")))
    stack = read_stack(root, overrides=overrides)
    for logical_id, seconds in parameter_overrides(os.environ.get("GEOEXPORT_FUNCTION_TIMEOUTS", "")).items():
        stack.functions[logical_id].timeout = int(seconds)  # tests shorten a step's timeout to provoke it
    if args.render_threads:
        for function in stack.functions.values():
            function.environment["RENDER_THREADS"] = str(args.render_threads)
    moto = start_moto(LOOPBACK, aws_port)
    wait_until_up(endpoint, stack.region)
    functions = FunctionHost(stack)
    dispatch_lambda_to(functions)
    provision(stack, endpoint)
    functions.load_all()
    records = seed_catalog(
        root / "infra" / "sample-data",
        client("s3", endpoint, stack.region),
        stack.physical["SourcesBucket"],
        CatalogRepository(client("dynamodb", endpoint, stack.region), stack.physical["CatalogTable"]),
    )
    for logical_id, seconds in stack.schedules:
        threading.Thread(target=_every, args=(seconds, functions, logical_id), daemon=True).start()
    stop = threading.Event()
    for mapping in stack.queue_events:
        threading.Thread(
            target=poll_queue,
            args=(mapping, functions, endpoint, stack.region, stop),
            name=f"sqs-{mapping.function}",
            daemon=True,
        ).start()
    demo = ClientRepository(
        client("dynamodb", endpoint, stack.region), stack.physical["ClientsTable"]
    ).create("demo", client_id="demo-client")
    apigateway = client("apigateway", endpoint, stack.region)
    plan_ids = {
        logical.removesuffix("UsagePlan").lower(): stack.physical[logical] for logical in stack.usage_plans
    }
    UsagePlans(apigateway, plan_ids).enroll(demo.client.client_id, "standard")
    api = make_server(LOOPBACK, api_port, functions, UsageMeter(apigateway))
    threading.Thread(target=api.serve_forever, name="api", daemon=True).start()
    api_url = f"http://{LOOPBACK}:{api_port}"
    state = Path(os.environ.get("GEOEXPORT_STATE") or root / ".geoexport" / "local.json").resolve()
    _announce(state, api_url, endpoint, demo, stack, plan_ids, records)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    api.shutdown()
    moto.stop()
    print("geoexport stopped", flush=True)
    return 0


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
    state.write_text(
        json.dumps(
            {
                "api": api_url,
                "aws": endpoint,
                "client_id": demo.client.client_id,
                "client_secret": demo.client_secret,
                "webhook_secret": demo.client.webhook_secret,
                "clients_table": stack.physical["ClientsTable"],
                "usage_plans": plan_ids,
            },
            indent=2,
        )
    )
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
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
