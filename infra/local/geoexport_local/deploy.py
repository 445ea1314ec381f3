"""``make deploy-local``: the unchanged template.yaml, built by ``sam build`` and deployed through the SAM
CLI's CloudFormation path onto MiniStack (a LocalStack-compatible emulator that runs Python Lambdas as local
processes, no Docker), on loopback only. A second, independent reading of the template: the embedded stack
(``make run``) reads template.yaml itself and could agree with a template CloudFormation would reject.

After the deploy it seeds the sample catalog and a demo client into the deployed tables, prints the API
Gateway URL and a ``ready`` line, writes them to a state file, and keeps MiniStack up until stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
STACK = "geoexport"
REGION = "us-east-1"


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def start_ministack(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """MiniStack on loopback only: its gateway bound to 127.0.0.1, its IoT MQTT/TLS listener (which binds
    0.0.0.0) switched off."""
    with socket.socket() as probe:
        if probe.connect_ex((LOOPBACK, port)) == 0:
            raise SystemExit(f"port {port} is in use; set GEOEXPORT_MINISTACK_PORT to another")
    env = {
        **os.environ,
        "BIND_HOST": LOOPBACK,
        "GATEWAY_PORT": str(port),
        "IOT_MTLS_ENABLED": "0",
        "SFTP_ENABLED": "0",
        "MINISTACK_REGION": REGION,
        "TMPDIR": str(workdir),
    }
    log = (workdir / "ministack.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "ministack")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        start_new_session=True,
    )
    wait_for(f"http://{LOOPBACK}:{port}/_ministack/health", 60)
    return process


def stop_group(process: subprocess.Popen[Any], seconds: float) -> None:
    """SIGTERM to a process group started with ``start_new_session``; SIGKILL if it is still up after."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(seconds)


def deploy(root: Path, endpoint: str, parameters: dict[str, str]) -> None:
    """samlocal deploy of the built template (`make build` made .aws-sam/build)."""
    built = root / ".aws-sam" / "build" / "template.yaml"
    if not built.exists():
        raise SystemExit("no .aws-sam/build/template.yaml: run `make build` first")
    overrides = [f"{name}={value}" for name, value in parameters.items()]
    command = [
        str(Path(sys.executable).parent / "samlocal"),
        "deploy",
        "--template-file",
        str(built),
        "--stack-name",
        STACK,
        "--resolve-s3",
        "--capabilities",
        "CAPABILITY_IAM",
        "CAPABILITY_AUTO_EXPAND",
        "--no-confirm-changeset",
        "--no-fail-on-empty-changeset",
        "--region",
        REGION,
        *(["--parameter-overrides", *overrides] if overrides else []),
    ]
    env = {**os.environ, **aws_environment(endpoint)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    subprocess.run(command, env=env, cwd=root, check=True, stdout=sys.stderr)


def aws_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def client(service: str, endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    make: Any = boto3.client  # Any: the service is a runtime string
    return make(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(s3={"addressing_style": "path"}),
    )


def stack_facts(endpoint: str) -> tuple[dict[str, str], dict[str, str]]:
    """(logical id -> physical id, output -> value) of the deployed stack."""
    cloudformation = client("cloudformation", endpoint)
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
    }
    (described,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    return resources, outputs


def api_url(endpoint: str, outputs: dict[str, str]) -> str:
    """The deployed API Gateway stage at the emulator: its LocalStack-style path for the execute-api host."""
    api_id = outputs["ApiUrl"].split("//", 1)[1].split(".", 1)[0]
    stage = outputs["ApiUrl"].rstrip("/").rsplit("/", 1)[1]
    return f"{endpoint}/_aws/execute-api/{api_id}/{stage}"


def apply_authorizers(root: Path, endpoint: str, resources: dict[str, str], outputs: dict[str, str]) -> int:
    """MiniStack 1.4.21 imports an API's OpenAPI body (SAM writes one for ``Auth``) with every method open:
    ``securityDefinitions``/``x-amazon-apigateway-authorizer`` and each operation's ``security`` are dropped
    (README, Known issues). Re-apply what template.yaml says, read by the same reader as the embedded stack:
    its TOKEN authorizer on every route that names one, through the API Gateway API as CloudFormation would
    have. Returns how many methods were secured; public routes stay open."""
    from geoexport_local.template import read_stack

    apigateway = client("apigateway", endpoint)
    lambdas = client("lambda", endpoint)
    api_id = outputs["ApiUrl"].split("//", 1)[1].split(".", 1)[0]
    template = read_stack(root)
    authorizers: dict[str, str] = {}
    ids = {r["path"]: r["id"] for r in apigateway.get_resources(restApiId=api_id, limit=500)["items"]}
    secured = 0
    for route in template.routes:
        if not route.authorizer:
            continue
        if route.authorizer not in authorizers:
            function = lambdas.get_function(FunctionName=resources[route.authorizer])
            arn = function["Configuration"]["FunctionArn"]
            authorizers[route.authorizer] = apigateway.create_authorizer(
                restApiId=api_id,
                name=route.authorizer,
                type="TOKEN",
                authorizerUri=f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations",
                identitySource="method.request.header.Authorization",
                authorizerResultTtlInSeconds=300,
            )["id"]
        apigateway.update_method(
            restApiId=api_id,
            resourceId=ids[route.path],
            httpMethod=route.method,
            patchOperations=[
                {"op": "replace", "path": "/authorizationType", "value": "CUSTOM"},
                {"op": "replace", "path": "/authorizerId", "value": authorizers[route.authorizer]},
            ],
        )
        secured += 1
    return secured


def seed(root: Path, endpoint: str, resources: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """The sample catalog and a demo client, written with the same code `make run` uses."""
    from geoexport.auth.clients import ClientRepository
    from geoexport.auth.usage import UsagePlans
    from geoexport.catalog.repository import CatalogRepository
    from geoexport_local.seed import seed_catalog

    dynamodb = client("dynamodb", endpoint)
    records = seed_catalog(
        root / "infra" / "sample-data",
        client("s3", endpoint),
        resources["SourcesBucket"],
        CatalogRepository(dynamodb, resources["CatalogTable"]),
    )
    clients = ClientRepository(dynamodb, resources["ClientsTable"])
    demo = clients.create("demo")
    plans = UsagePlans(
        client("apigateway", endpoint),
        {"standard": outputs["StandardUsagePlanId"], "restricted": outputs["RestrictedUsagePlanId"]},
    )
    plans.enroll(demo.client.client_id, "standard")
    return {
        "client_id": demo.client.client_id,
        "client_secret": demo.client_secret,
        "webhook_secret": demo.client.webhook_secret,
        "records": {record.name: str(record.id) for record in records},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geoexport_local deploy", description=__doc__)
    parser.add_argument("--root", default=".", help="project root (holds template.yaml and .aws-sam/)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GEOEXPORT_MINISTACK_PORT", "4567")))
    parser.add_argument("--state", help="where to write the API URL and demo client (JSON)")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    workdir = Path(tempfile.mkdtemp(prefix="geoexport-ministack-"))
    endpoint = f"http://{LOOPBACK}:{args.port}"
    os.environ.update(aws_environment(endpoint))
    started = time.monotonic()
    process = start_ministack(args.port, workdir)
    stop = False

    def end(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, end)
    signal.signal(signal.SIGINT, end)
    try:
        # Loopback receivers and plain http for webhooks, as on the embedded stack; nothing else differs.
        deploy(root, endpoint, {"WebhookAllowLoopback": "true", "WebhookHttpsOnly": "false"})
        resources, outputs = stack_facts(endpoint)
        secured = apply_authorizers(root, endpoint, resources, outputs)
        url = api_url(endpoint, outputs)
        wait_for(f"{url}/health", 120)
        facts = {"api": url, "aws": endpoint, "outputs": outputs, **seed(root, endpoint, resources, outputs)}
        state = Path(args.state or root / ".geoexport" / "deployed.json")
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps(facts, indent=2))
        print(f"MiniStack (pinned, loopback only) at {endpoint}; its log: {workdir / 'ministack.log'}")
        print(f"bearer authorizer re-applied to {secured} methods (MiniStack drops it on import)")
        print(f"demo client: id={facts['client_id']} secret={facts['client_secret']} (saved in {state})")
        print(f"deployed ready in {time.monotonic() - started:.0f} s: API {url}", flush=True)
        while not stop and process.poll() is None:
            time.sleep(0.2)
    finally:
        stop_group(process, 10)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if stop else 1


if __name__ == "__main__":
    sys.exit(main())
