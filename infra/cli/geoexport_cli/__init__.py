"""``geoexport``: a bearer token for the API, and new API clients, on the local stack and on AWS alike.

  geoexport token [--api URL] [--client-id ID --client-secret SECRET]
  geoexport client create NAME [--scopes exports:read,exports:write] [--plan standard|restricted]
                              [--table T --usage-plan-id ID] [--endpoint-url URL]
  geoexport features reindex [--force] [--table FeaturesTable] [--endpoint-url URL]

On the local stack the defaults come from the state file `make run` writes (``.geoexport/local.json``, or
``GEOEXPORT_STATE``): the demo client, the API URL, the emulator, the clients table and the usage plans. On
AWS, pass --api and credentials to ``token``; ``client create`` takes --table (the stack's ClientsTable) and
--usage-plan-id (its StandardUsagePlanId or RestrictedUsagePlanId output) and uses your AWS credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from geoexport.auth.clients import ALL_SCOPES, ClientRepository
from geoexport.auth.usage import PLANS, UsagePlans


def _state() -> dict[str, Any]:
    """The local stack's state file: GEOEXPORT_STATE, else local.json in its data directory."""
    data = Path(os.environ.get("GEOEXPORT_DATA_DIR") or ".geoexport")
    path = Path(os.environ.get("GEOEXPORT_STATE") or data / "local.json")
    return json.loads(path.read_text()) if path.exists() else {}


def token(args: argparse.Namespace) -> int:
    state = _state()
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
    state = _state()
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

    state = _state()
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

    state = _state()
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="geoexport", description="geoexport API credentials")
    commands = parser.add_subparsers(dest="command", required=True)
    tok = commands.add_parser("token", help="print a bearer token")
    tok.add_argument("--api")
    tok.add_argument("--client-id")
    tok.add_argument("--client-secret")
    tok.set_defaults(run=token)
    client = commands.add_parser("client", help="manage API clients")
    client_commands = client.add_subparsers(dest="action", required=True)
    create = client_commands.add_parser("create", help="register a client and print its credentials")
    create.add_argument("name")
    create.add_argument("--scopes", help=f"comma-separated (default: {','.join(ALL_SCOPES)})")
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
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
