"""``geoexport``: exports from a terminal, and the operator's credentials tools, locally and on AWS alike.

  geoexport export create --record NAME|ID [--bbox|--wkt|--geojson FILE|--country C] [--zoom Z|--resolution R]
                          [--format GPKG|GTiff] [--crs EPSG] [--packer P] [--webhook URL] [--dry-run]
                          [--wait] [--download DIR] [--json]
  geoexport export list|get|abort|log|download ...      geoexport catalog list
  geoexport features import FILE --model M              geoexport features reindex [--force]
  geoexport token [--api URL] [--client-id ID --client-secret SECRET]
  geoexport client create|disable|delete|quota ...

The user commands find the API and credentials in flags, the environment, a config file or the local
stack's state (see geoexport_cli.api). On the local stack the operator commands' defaults come from the
state file `make run` writes (``.geoexport/local.json``, or ``GEOEXPORT_STATE``): the demo client, the API
URL, the emulator, the clients table and the usage plans. On AWS, pass --api and credentials to ``token``;
``client create`` takes --table (the stack's ClientsTable) and --usage-plan-id (its StandardUsagePlanId or
RestrictedUsagePlanId output) and uses your AWS credentials. Imports are lazy: ``--help`` loads neither
boto3 nor rich.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from geoexport_cli.api import CliError, state_file

PLANS = ("standard", "restricted")  # geoexport.auth.usage.PLANS (a test keeps them equal)
DEFAULT_SCOPES = "exports:read,exports:write"  # geoexport.auth.clients.ALL_SCOPES


def token(args: argparse.Namespace) -> int:
    state = state_file()
    api = args.api or os.environ.get("GEOEXPORT_API_URL") or state.get("api")
    client_id = args.client_id or state.get("client_id")
    secret = args.client_secret or (
        state.get("client_secret") if client_id == state.get("client_id") else None
    )
    if not (api and client_id and secret):
        print(
            "geoexport token: give --api, --client-id and --client-secret (no local stack state found)",
            file=sys.stderr,
        )
        return 2
    body = json.dumps({"client_id": client_id, "client_secret": secret}).encode()
    request = urllib.request.Request(
        f"{api.rstrip('/')}/auth/token",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            print(json.loads(response.read())["access_token"])
    except urllib.error.HTTPError as error:
        print(f"geoexport token: {error.code} {error.read().decode()}", file=sys.stderr)
        return 1
    return 0


def _aws(args: argparse.Namespace) -> tuple[str | None, dict[str, Any]]:
    """The clients table and boto3's arguments: the local stack's (from its state file) unless --table."""
    state = state_file()
    table = args.table or os.environ.get("GEOEXPORT_CLIENTS_TABLE") or state.get("clients_table")
    endpoint = args.endpoint_url or (state.get("aws") if not args.table else None)
    extra: dict[str, Any] = {}
    if endpoint:  # the local emulator takes any credentials
        extra = {
            "endpoint_url": endpoint,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "region_name": "us-east-1",
        }
    return table, extra


def revoke_client(args: argparse.Namespace) -> int:
    """disable: no new token and the client's tokens are refused; delete: that, and its record goes."""
    import boto3

    from geoexport.auth.clients import ClientRepository

    table, extra = _aws(args)
    if not table:
        print(f"geoexport client {args.action}: give --table (the stack's ClientsTable)", file=sys.stderr)
        return 2
    repository = ClientRepository(boto3.client("dynamodb", **extra), table)
    done = (
        repository.disable(args.client_id) if args.action == "disable" else repository.delete(args.client_id)
    )
    if not done:
        print(f"geoexport client {args.action}: no client {args.client_id}", file=sys.stderr)
        return 1
    print(json.dumps({"client_id": args.client_id, args.action + "d": True}))
    return 0


def set_quota(args: argparse.Namespace) -> int:
    """Per-client quotas; a quota not given goes back to the deployment's default."""
    import boto3

    from geoexport.auth.clients import ClientRepository

    table, extra = _aws(args)
    if not table:
        print("geoexport client quota: give --table (the stack's ClientsTable)", file=sys.stderr)
        return 2
    repository = ClientRepository(boto3.client("dynamodb", **extra), table)
    if not repository.set_quotas(args.client_id, args.storage_bytes, args.max_concurrent):
        print(f"geoexport client quota: no client {args.client_id}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "client_id": args.client_id,
                "storage_quota_bytes": args.storage_bytes,  # null: the deployment's default
                "max_concurrent_exports": args.max_concurrent,
            }
        )
    )
    return 0


def reindex_features(args: argparse.Namespace) -> int:
    """Rebuild the feature index (after an upgrade that changed its layout; --force: in any case)."""
    import boto3

    from geoexport.features.repository import FeatureIndex, FeatureRepository
    from geoexport.features.service import reindex

    state = state_file()
    table = args.table or os.environ.get("GEOEXPORT_FEATURES_TABLE") or state.get("features_table")
    if not table:
        print("geoexport features reindex: give --table (the stack's FeaturesTable)", file=sys.stderr)
        return 2
    _, extra = _aws(argparse.Namespace(table=args.table, endpoint_url=args.endpoint_url))
    db = boto3.client("dynamodb", **extra)
    count = reindex(FeatureRepository(db, table), FeatureIndex(db, table), force=args.force)
    print(json.dumps({"table": table, "reindexed": count}))  # null: the index was current already
    return 0


def create_client(args: argparse.Namespace) -> int:
    import boto3

    from geoexport.auth.clients import ALL_SCOPES, ClientRepository
    from geoexport.auth.usage import UsagePlans

    state = state_file()
    table, extra = _aws(args)
    if not table:
        print("geoexport client create: give --table (the stack's ClientsTable)", file=sys.stderr)
        return 2
    plan_id = args.usage_plan_id or (state.get("usage_plans", {}).get(args.plan) if not args.table else None)
    if not plan_id:
        print(
            "geoexport client create: give --usage-plan-id (the stack's StandardUsagePlanId or "
            "RestrictedUsagePlanId output); API Gateway refuses clients in no usage plan",
            file=sys.stderr,
        )
        return 2
    repository = ClientRepository(boto3.client("dynamodb", **extra), table)
    scopes = tuple(s for s in args.scopes.split(",") if s) if args.scopes else ALL_SCOPES
    created = repository.create(args.name, scopes)
    UsagePlans(boto3.client("apigateway", **extra), {args.plan: plan_id}).enroll(
        created.client.client_id, args.plan
    )
    print(
        json.dumps(
            {
                "client_id": created.client.client_id,
                "client_secret": created.client_secret,
                "scopes": list(created.client.scopes),
                "plan": args.plan,
                "webhook_secret": created.client.webhook_secret,
            },
            indent=2,
        )
    )
    return 0


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _joined(argv: list[str]) -> list[str]:
    """``--bbox -78.2,24.2,...`` as ``--bbox=-78.2,...``: argparse takes a western longitude for a flag."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--bbox" and arg.startswith("-"):
            out[-1] = f"--bbox={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    from geoexport_cli.exports import add_commands, add_feature_import

    parser = argparse.ArgumentParser(prog="geoexport", description="geoexport: exports from a terminal")
    commands = parser.add_subparsers(dest="command", required=True)
    add_commands(commands)
    tok = commands.add_parser("token", help="print a bearer token")
    tok.add_argument("--api")
    tok.add_argument("--client-id")
    tok.add_argument("--client-secret")
    tok.set_defaults(run=token)
    client = commands.add_parser("client", help="manage API clients")
    client_commands = client.add_subparsers(dest="action", required=True)
    create = client_commands.add_parser("create", help="register a client and print its credentials")
    create.add_argument("name")
    create.add_argument("--scopes", help=f"comma-separated (default: {DEFAULT_SCOPES})")
    create.add_argument("--plan", choices=PLANS, default="standard", help="usage plan (rate limits)")
    create.add_argument("--usage-plan-id", help="on AWS: the plan's id (stack outputs)")
    create.add_argument("--table")
    create.add_argument("--endpoint-url")
    create.set_defaults(run=create_client)
    for action, text in (
        ("disable", "revoke a client: no new tokens, its tokens refused (within 300 s on AWS)"),
        ("delete", "remove a client: revoked as by disable, and its callbacks are no longer sent"),
    ):
        revoke = client_commands.add_parser(action, help=text)
        revoke.add_argument("client_id")
        revoke.add_argument("--table")
        revoke.add_argument("--endpoint-url")
        revoke.set_defaults(run=revoke_client)
    quota = client_commands.add_parser(
        "quota", help="set a client's own storage and concurrency quotas (omitted: the default)"
    )
    quota.add_argument("client_id")
    quota.add_argument("--storage-bytes", type=_count, help="bytes its exports may hold at once")
    quota.add_argument("--max-concurrent", type=_positive, help="exports it may have running at once")
    quota.add_argument("--table")
    quota.add_argument("--endpoint-url")
    quota.set_defaults(run=set_quota)
    features = commands.add_parser("features", help="maintain the feature repository")
    feature_commands = features.add_subparsers(dest="action", required=True)
    reindex = feature_commands.add_parser(
        "reindex", help="rebuild the bbox index from the features (needed once after an upgrade changes it)"
    )
    reindex.add_argument("--force", action="store_true", help="even when the index is current")
    reindex.add_argument("--table")
    reindex.add_argument("--endpoint-url")
    reindex.set_defaults(run=reindex_features)
    add_feature_import(feature_commands)
    args = parser.parse_args(_joined(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.run(args))
    except CliError as error:
        print(f"geoexport {args.command}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
