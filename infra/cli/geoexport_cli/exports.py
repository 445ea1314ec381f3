"""The user's commands: exports (create, list, get, abort, log, download), the catalog, feature imports.

Every command prints for people by default and JSON with ``--json`` (for scripts). Progress bars come from
rich, imported only by the commands that draw one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from geoexport_cli.api import Api, CliError, settings

ZOOM0_RESOLUTION = 0.703125  # deg/px of WorldCRS84Quad's zoom 0 (the API's zoom rule)
FINAL = ("COMPLETED", "FAILED", "ABORTED", "EXPIRED", "ARCHIVED")
FEATURE_BATCH = 100  # the API's batch limit for POST /features


def api_of(args: argparse.Namespace) -> Api:
    return Api(settings(args.api, args.client_id, args.client_secret))


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    print(json.dumps(document, indent=2) if args.json else text)


# -- the catalog ---------------------------------------------------------------------------------------
def records(api: Api) -> list[dict[str, Any]]:
    return list(api.call("GET", "/catalog/records")[1]["records"])


def catalog_list(args: argparse.Namespace) -> int:
    found = records(api_of(args))
    lines = [
        f"{r['id']}  {r['name']:<24} {r['domain']:<6} EPSG:{r['crs'].removeprefix('EPSG:'):<6} "
        f"{r['maxResolutionDeg']:.6g} deg/px"
        for r in found
    ]
    emit(args, found, "\n".join(lines))
    return 0


def record_of(api: Api, name_or_id: str) -> dict[str, Any]:
    """A record by id or by name (names are what people remember)."""
    for record in records(api):
        if name_or_id in (record["id"], record["name"]):
            return record
    raise CliError(f"no catalog record {name_or_id!r}: `geoexport catalog list` shows them")


# -- exports -------------------------------------------------------------------------------------------
def roi_of(args: argparse.Namespace) -> Any:
    given = [name for name in ("bbox", "wkt", "geojson", "country") if getattr(args, name)]
    if len(given) > 1:
        raise CliError(f"give one ROI, not {' and '.join('--' + g for g in given)}")
    if args.bbox:
        try:
            x0, y0, x1, y1 = (float(v) for v in args.bbox.split(","))
        except ValueError as error:
            raise CliError("--bbox is minLon,minLat,maxLon,maxLat") from error
        return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    if args.wkt:
        return args.wkt
    if args.geojson:
        try:
            return json.loads(Path(args.geojson).read_text())
        except (OSError, ValueError) as error:
            raise CliError(f"--geojson {args.geojson}: {error}") from error
    if args.country:
        return {"country": args.country}
    return None  # the record's whole footprint


def request_of(args: argparse.Namespace, api: Api) -> dict[str, Any]:
    body: dict[str, Any] = {"description": args.description or ""}
    if args.domain == "VECTOR":
        body["domain"] = "VECTOR"
        if args.model:
            body["parameters"] = {"model": args.model}
    else:
        if not args.record:
            raise CliError("--record names the catalog record (id or name)")
        record = record_of(api, args.record)
        body["catalogRecordID"] = record["id"]
        body["domain"] = args.domain or record["domain"]
    roi = roi_of(args)
    if roi is not None:
        body["ROI"] = roi
    if args.zoom is not None and args.resolution is not None:
        raise CliError("give --zoom or --resolution, not both")
    if args.zoom is not None:
        body["maxResolutionDeg"] = ZOOM0_RESOLUTION / 2**args.zoom
    elif args.resolution is not None:
        body["maxResolutionDeg"] = args.resolution
    for name, key in (("format", "format"), ("crs", "artifactCRS"), ("packer", "packer")):
        if getattr(args, name):
            body[key] = getattr(args, name)
    if args.webhook:
        body["webhooks"] = [{"url": url, "events": ["TASK_COMPLETED", "TASK_FAILED"]} for url in args.webhook]
    return body


def export_create(args: argparse.Namespace) -> int:
    api = api_of(args)
    body = request_of(args, api)
    if args.dry_run:
        _, estimate = api.call("POST", "/export-tasks", body, query={"dryRun": "true"})
        text = (
            f"{estimate['tiles']} tiles, about {human(estimate['estimatedSize'])}, "
            f"about {estimate['estimatedTime']:.0f} s; fits in storage: {estimate['fitsInStorage']} "
            f"({human(estimate['freeBytes'])} free)"
        )
        emit(args, estimate, text)
        return 0
    status, task = api.call("POST", "/export-tasks", body)
    how = "created" if status == 201 else "answered by an identical export"
    if not args.json:
        print(f"{task['id']} {how}: {task['status']}", file=sys.stderr)
        for note in task.get("notes", []):
            print(f"note: {note}", file=sys.stderr)
    if args.wait or args.download:
        task = wait(api, task["id"], quiet=args.json)
        if task["status"] != "COMPLETED":
            raise CliError(f"export {task['id']} ended {task['status']}: {task.get('errorReason')}")
    if args.download:
        saved = download(task, Path(args.download), quiet=args.json)
        task = {**task, "downloaded": [str(p) for p in saved]}
    emit(args, task, f"{task['id']} {task['status']} {task['progress']}%")
    return 0


def wait(api: Api, task_id: str, quiet: bool = False, poll: float = 1.0) -> dict[str, Any]:
    """Poll until the export ends, drawing status, percent, elapsed time and ETA (unless ``quiet``)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    # On stderr: stdout keeps only the result, for scripts and pipes.
    with Progress(*columns, console=Console(stderr=True), disable=quiet, transient=False) as bar:
        line = bar.add_task("PENDING", total=100)
        while True:
            task: dict[str, Any] = api.call("GET", f"/export-tasks/{task_id}")[1]
            bar.update(line, completed=task["progress"], description=f"{task['status']:<11}")
            if task["status"] in FINAL:
                return task
            time.sleep(poll)


def download(task: dict[str, Any], folder: Path, quiet: bool = False) -> list[Path]:
    """Every artifact into ``folder``, each checked against its sha256 (a mismatch is an error)."""
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for artifact in task["artifacts"]:
        if not artifact.get("url"):
            raise CliError(f"{artifact['name']} has no link (the export is {task['status']})")
        path = folder / artifact["name"]
        digest = hashlib.sha256()
        with urllib.request.urlopen(artifact["url"], timeout=300) as response, path.open("wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != artifact["sha256"]:
            raise CliError(
                f"{path}: sha256 {digest.hexdigest()} is not the {artifact['sha256']} the API lists"
            )
        if not quiet:
            print(f"{path} {human(artifact['size'])} sha256 ok", file=sys.stderr)
        saved.append(path)
    return saved


def export_list(args: argparse.Namespace) -> int:
    query = {"limit": args.limit, "status": args.status}
    _, page = api_of(args).call("GET", "/export-tasks", query=query)
    lines = [
        f"{t['id']}  {t['status']:<11} {t['progress']:>3}%  {t['createdAt']}  {t['description']}"
        for t in page["items"]
    ]
    emit(args, page, "\n".join(lines))
    return 0


def export_get(args: argparse.Namespace) -> int:
    _, task = api_of(args).call("GET", f"/export-tasks/{args.id}")
    lines = [f"{task['id']} {task['status']} {task['progress']}%"]
    if task.get("errorReason"):
        lines.append(f"error: {task['errorReason']}")
    lines += [f"{a['type']:<9} {a['name']} {human(a['size'])}" for a in task["artifacts"]]
    emit(args, task, "\n".join(lines))
    return 0


def export_abort(args: argparse.Namespace) -> int:
    _, task = api_of(args).call("POST", f"/export-tasks/{args.id}/abort")
    emit(args, task, f"{task['id']} {task['status']}")
    return 0


def export_log(args: argparse.Namespace) -> int:
    _, log = api_of(args).call("GET", f"/export-tasks/{args.id}/log")
    lines = [f"{e['time']}  {e['type']:<15} {e['message']}" for e in log["entries"]]
    emit(args, log, "\n".join(lines))
    return 0


def export_download(args: argparse.Namespace) -> int:
    _, task = api_of(args).call("GET", f"/export-tasks/{args.id}")
    if task["status"] != "COMPLETED":
        raise CliError(f"export {args.id} is {task['status']}: only a COMPLETED export has files")
    saved = download(task, Path(args.dir), quiet=args.json)
    emit(args, [str(p) for p in saved], "\n".join(str(p) for p in saved))
    return 0


# -- features ------------------------------------------------------------------------------------------
def features_import(args: argparse.Namespace) -> int:
    """A GeoJSON FeatureCollection into the repository, in batches at the API's limit."""
    from rich.console import Console
    from rich.progress import Progress

    try:
        collection = json.loads(Path(args.file).read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"{args.file}: {error}") from error
    source = collection.get("features", []) if isinstance(collection, dict) else []
    if not source:
        raise CliError(f"{args.file}: a GeoJSON FeatureCollection with features")
    features = [
        {
            "type": "Feature",
            "id": str(f.get("id") or (f.get("properties") or {}).get(args.id_property) or uuid.uuid4()),
            "model": args.model,
            "entityType": args.entity_type,
            "geometry": f.get("geometry"),
            "properties": f.get("properties") or {},
        }
        for f in source
    ]
    api = api_of(args)
    created, failed = 0, []
    with Progress(console=Console(stderr=True), disable=args.json) as bar:
        line = bar.add_task(f"importing {len(features)} features", total=len(features))
        for start in range(0, len(features), FEATURE_BATCH):
            batch = features[start : start + FEATURE_BATCH]
            for item in post_batch(api, batch):
                if item["status"] == 201:
                    created += 1
                else:
                    failed.append(item)
            bar.advance(line, len(batch))
    summary = {"created": created, "failed": len(failed), "errors": failed[:20]}
    reasons: dict[str, int] = {}
    for item in failed:
        for problem in item.get("errors") or [{"field": "", "reason": f"status {item['status']}"}]:
            key = f"{problem.get('field')}: {problem.get('reason')}"
            reasons[key] = reasons.get(key, 0) + 1
    text = f"{created} created, {len(failed)} refused" + "".join(
        f"\n  {count} x {reason}" for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])
    )
    emit(args, summary, text)
    return 0 if not failed else 1


def post_batch(api: Api, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each feature's outcome. The API refuses a whole batch (400) when one feature is malformed; the batch
    is then sent feature by feature, so the good ones load and the bad one is named with its reason."""
    try:
        _, answer = api.call("POST", "/features", {"type": "FeatureCollection", "features": batch})
        return list(answer["items"])
    except CliError as error:
        if len(batch) > 1 and str(error).startswith(("400", "422")):
            return [item for feature in batch for item in post_batch(api, [feature])]
        if len(batch) > 1:
            raise
        status = int(str(error)[:3]) if str(error)[:3].isdigit() else 0
        return [{"id": batch[0]["id"], "status": status, "errors": [{"field": "", "reason": str(error)}]}]


def human(size: float | None) -> str:
    if size is None:
        return "?"
    if size < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


# -- the parser ------------------------------------------------------------------------------------------
def common_options() -> argparse.ArgumentParser:
    """Where the API is and who calls it, and --json: on every user command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", help="API URL (else GEOEXPORT_API_URL, the config file, the local stack)")
    common.add_argument("--client-id")
    common.add_argument("--client-secret")
    common.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    return common


def add_commands(commands: Any) -> None:
    """``export`` and ``catalog`` on the top-level parser's subcommands."""
    common = common_options()

    export = commands.add_parser("export", help="order, follow and download exports")
    actions = export.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[common], help="order an export")
    create.add_argument("--record", help="catalog record id or name (RASTER, DEM)")
    create.add_argument("--domain", choices=["RASTER", "DEM", "VECTOR"], help="default: the record's")
    create.add_argument("--model", help="VECTOR: only features of this model")
    create.add_argument("--bbox", help="ROI as minLon,minLat,maxLon,maxLat")
    create.add_argument("--wkt", help="ROI as WKT in EPSG:4326")
    create.add_argument("--geojson", help="ROI from a GeoJSON file")
    create.add_argument("--country", help="ROI: a country's name or ISO code")
    create.add_argument("--zoom", type=int, help="resolution as a WorldCRS84Quad zoom level")
    create.add_argument("--resolution", type=float, help="resolution in degrees per pixel")
    create.add_argument("--format", choices=["GPKG", "GTiff"])
    create.add_argument("--crs", help="EPSG code of the output (GTiff)")
    create.add_argument("--packer", choices=["none", "zip", "tar.gz", "tar.bz2"])
    create.add_argument("--webhook", action="append", help="callback URL (repeatable)")
    create.add_argument("--description")
    create.add_argument("--dry-run", action="store_true", help="print the estimate; create nothing")
    create.add_argument(
        "--wait", action="store_true", help="show progress until it ends (exit 1 if it fails)"
    )
    create.add_argument("--download", metavar="DIR", help="wait, then fetch every file and check its sha256")
    create.set_defaults(run=export_create)
    listing = actions.add_parser("list", parents=[common], help="your exports, newest first")
    listing.add_argument("--status")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(run=export_list)
    for name, run, text in (
        ("get", export_get, "one export: status, files"),
        ("abort", export_abort, "abort a pending or running export"),
        ("log", export_log, "an export's log"),
    ):
        command = actions.add_parser(name, parents=[common], help=text)
        command.add_argument("id")
        command.set_defaults(run=run)
    fetch = actions.add_parser("download", parents=[common], help="fetch a completed export's files")
    fetch.add_argument("id")
    fetch.add_argument("dir", nargs="?", default=".")
    fetch.set_defaults(run=export_download)

    catalog = commands.add_parser("catalog", help="the exportable products")
    catalog_actions = catalog.add_subparsers(dest="action", required=True)
    catalog_actions.add_parser("list", parents=[common], help="list catalog records").set_defaults(
        run=catalog_list
    )


def add_feature_import(feature_commands: Any) -> None:
    """``features import`` on the ``features`` command's subcommands."""
    load = feature_commands.add_parser(
        "import", parents=[common_options()], help="load a GeoJSON FeatureCollection as features of a model"
    )
    load.add_argument("file")
    load.add_argument("--model", required=True)
    load.add_argument("--entity-type", default="DATA", choices=["DATA", "DATASET", "COLLECTION"])
    load.add_argument("--id-property", default="id", help="the property that is the provider's id")
    load.set_defaults(run=features_import)
