"""Package: render the export (GeoPackage tiles or a COG with sidecars), pack it, describe it (metadata
JSON and a STAC Item), and stage every file in scratch for Upload."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from shapely.geometry import mapping, shape

from geoexport.errors import UnprocessableRequest
from geoexport.geometry import grid
from geoexport.models.tasks import ArtifactType, Packer
from geoexport.packaging.attached import FileSource
from geoexport.packaging.bundle import member, pack
from geoexport.packaging.metadata import build_metadata, cog_details, gpkg_details, sha256_file
from geoexport.packaging.stac import build_item, media_type
from geoexport.pipeline import fanout, pause, vector
from geoexport.pipeline.items import WorkItem
from geoexport.pipeline.plan import ExportPlan, PlanFormat, scratch_prefix
from geoexport.pipeline.selection import read_chunks

if TYPE_CHECKING:  # rasterio is imported where a raster is made: the VECTOR Package function has none
    from geoexport.packaging.records import RecordFile, RecordOptions
    from geoexport.raster.render import Level, RenderStats

PACKAGE_PROGRESS = (10, 80)  # the share of the task's progress this step covers

logger = logging.getLogger(__name__)


class Store(fanout.Store, Protocol):
    """The exports bucket's scratch area: the plan, work items and parts in; staged files out."""

    def put_file(self, key: str, path: Path, sha256_hex: str, content_type: str) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...


class Progress(pause.TaskReader, Protocol):
    def report_progress(self, task_id: UUID | str, progress: int) -> bool: ...


class ItemProgress(Progress, Protocol):
    def finish_item(self, task_id: UUID | str, index: int) -> int: ...


def levels_of(plan: ExportPlan) -> list[Level]:
    from geoexport.raster.render import Level

    return [
        Level(level.zoom, shape(level.region), grid.TileRange(level.zoom, *level.tiles))
        for level in plan.levels
    ]


def render_gpkg(
    plan: ExportPlan,
    source: str,
    target: Path,
    threads: int,
    gdal_options: dict[str, str],
    progress: Callable[[float], None] | None = None,
) -> RenderStats:
    """The whole clip+package work for one plan: warp each level straight into the GeoPackage."""
    from geoexport.raster.render import inspect_bands, render
    from geoexport.raster.source import gdal_env

    with gdal_env(gdal_options):
        bands = inspect_bands(source, plan.sourceResolutionDeg)
    with fanout.container(plan, target) as gpkg:
        stats = render(source, bands, levels_of(plan), gpkg.add, threads, gdal_options, progress)
        if gpkg.count == 0:
            raise UnprocessableRequest("the ROI covers only nodata pixels of the source; nothing to export")
    return stats


@dataclass
class Produced:
    """The data files one format produced (before packing), and what the metadata says about them."""

    files: list[tuple[ArtifactType, Path]]
    details: dict[str, Any]


def _gpkg(
    plan: ExportPlan, workdir: Path, threads: int, gdal_options: dict[str, str], on_progress: Any
) -> Produced:
    from geoexport.raster.source import gdal_path

    path = workdir / f"{plan.fileStem}.gpkg"
    stats = render_gpkg(plan, gdal_path(plan.sourceUri), path, threads, gdal_options, on_progress)
    return Produced([(ArtifactType.GPKG, path)], gpkg_details(plan, stats.tiles_per_zoom))


def _gtiff(plan: ExportPlan, workdir: Path, threads: int, gdal_options: dict[str, str]) -> Produced:
    from geoexport.raster.cog import render_cog
    from geoexport.raster.dem import heights_details
    from geoexport.raster.source import gdal_env, gdal_path

    path = workdir / f"{plan.fileStem}.tif"
    region = shape(plan.footprint)
    heights = plan.heights
    with gdal_env(gdal_options):
        result = render_cog(
            gdal_path(plan.sourceUri),
            mapping(region),
            plan.crs,
            plan.resolutionDeg,
            path,
            threads,
            heights=heights is not None,
        )
    files = [(ArtifactType.GTIFF, path)] + [(ArtifactType.SIDECAR, sidecar) for sidecar in result.sidecars]
    details = cog_details(plan, result)
    if heights is not None:
        details["heights"] = heights_details(result.stats[0], heights.unit, heights.verticalDatum)
    return Produced(files, details)


def _dem_gpkg(plan: ExportPlan, workdir: Path, threads: int, gdal_options: dict[str, str]) -> Produced:
    """Heights as a GeoPackage 2D gridded coverage (see :mod:`geoexport.raster.dem`)."""
    from geoexport.raster import dem
    from geoexport.raster.source import gdal_env, gdal_path

    assert plan.heights is not None, "a DEM plan says what its heights are"
    path = workdir / f"{plan.fileStem}.gpkg"
    min_zoom = min(level.zoom for level in plan.levels)
    with gdal_env(gdal_options):
        result = dem.render_gpkg(
            gdal_path(plan.sourceUri),
            plan.footprint,
            min_zoom,
            plan.maxZoom,
            plan.fileStem,
            plan.heights.unit,
            path,
            threads,
        )
    details = gpkg_details(plan, result.tiles_per_zoom, result.zooms)
    details.update(
        tilingScheme="WorldCRS84Quad",
        gdalTilingScheme=dem.TILING_SCHEME,
        tileFormat="image/tiff",
        encoding=dem.ENCODING,
        heights=dem.heights_details(result.stats, plan.heights.unit, plan.heights.verticalDatum),
    )
    return Produced([(ArtifactType.GPKG, path)], details)


def _merged(
    plan: ExportPlan,
    workdir: Path,
    scratch: Store,
    threads: int,
    gdal_options: dict[str, str],
    tolerated: float,
) -> Produced:
    from geoexport.raster.source import gdal_path

    source = gdal_path(plan.sourceUri)

    def render_missing(item: WorkItem, path: Path) -> int:
        return fanout.render_part(plan, item, source, path, threads, gdal_options)

    path = workdir / f"{plan.fileStem}.gpkg"
    per_zoom = fanout.merge(plan, scratch, path, render_missing, tolerated)
    return Produced([(ArtifactType.GPKG, path)], gpkg_details(plan, per_zoom))


def _record_files(
    plan: ExportPlan, workdir: Path, options: RecordOptions, columns: list[str], filled: set[str]
) -> list[tuple[ArtifactType, RecordFile]]:
    """The record files asked for, open for writing, in the order they are listed."""
    from geoexport.packaging import records
    from geoexport.packaging.records import RecordFormat

    assert plan.selection is not None
    stem, formats = plan.fileStem, options.formats
    writers: list[tuple[ArtifactType, RecordFile]] = []
    if RecordFormat.GEOJSON in formats:
        path = workdir / f"{stem}.geojson"
        writers.append((ArtifactType.GEOJSON, records.GeoJsonFile(path, columns, sequence=False)))
    if RecordFormat.GEOJSONSEQ in formats:
        path = workdir / f"{stem}.geojsonl"
        writers.append((ArtifactType.GEOJSON, records.GeoJsonFile(path, columns, sequence=True)))
    if RecordFormat.CSV in formats:
        path = workdir / f"{stem}.csv"
        writers.append((ArtifactType.CSV, records.CsvFile(path, options, columns, filled)))
    if RecordFormat.JSON in formats:
        path = workdir / f"{stem}.records.json"
        writers.append((ArtifactType.JSON, records.JsonFile(path, options, columns)))
    if RecordFormat.XML in formats:
        path = workdir / f"{stem}.xml"
        xml = records.XmlFile(path, options, columns, plan.crs, plan.selection.count)
        writers.append((ArtifactType.XML, xml))
    return writers


def _vector(
    plan: ExportPlan,
    workdir: Path,
    scratch: Store,
    part_bytes: int,
    sources: FileSource | None,
    on_progress: Callable[[float], None] = lambda _: None,
) -> Produced:
    """The features as each asked format (GeoPackage layers by default; see geoexport.packaging.records),
    and with ``files`` their stored files (geoexport.packaging.attached), a chunk of the selection at a
    time: every file is appended to, so memory holds one chunk whatever the export's size."""
    from geoexport.packaging import records
    from geoexport.packaging.attached import copy_files
    from geoexport.packaging.records import RecordFormat

    assert plan.selection is not None, "a VECTOR plan carries its selection"
    selection, options = plan.selection, records.RecordOptions.model_validate(plan.records)
    stem, formats = plan.fileStem, options.formats
    names = {name for layer in selection.layers.values() for name in layer.columns}
    columns = options.columns_of(names)
    shown = options.shown()
    filled = {c for n, c in shown if n in selection.filled} if shown else set(selection.filled)
    filled |= {records.FILES_COLUMN} if options.files else set()
    gpkg = None
    if selection.count and RecordFormat.GPKG in formats:
        schemas = vector.layer_schemas(selection, shown, options.files)
        gpkg = vector.GeoPackageParts(workdir, stem, plan.crs, part_bytes, schemas)
    writers = _record_files(plan, workdir, options, columns, filled) if selection.count else []
    files: list[tuple[ArtifactType, Path]] = []
    taken: set[str] = set()
    for number, chunk in enumerate(read_chunks(scratch, selection.chunks), start=1):
        features = options.shape(chunk)
        if options.files:
            assert sources is not None, "the VECTOR Package function reads the feature files bucket"
            copied = copy_files(features, options, workdir, sources, taken)
            files += [(ArtifactType.FILE, path) for path in copied]
        geometries = vector.project(features, plan.crs)
        if gpkg is not None:
            gpkg.write(features, geometries)
        for _, writer in writers:
            writer.write(features, geometries)
        on_progress(number / len(selection.chunks))
    gpkgs = gpkg.close() if gpkg is not None else []
    files += [(ArtifactType.GPKG, path) for path in gpkgs]
    for kind, writer in writers:
        written = writer.close()
        files += [(ArtifactType.SCHEMA if p.name == records.XSD_NAME else kind, p) for p in written]
    counts = {vector.layer_name(model): layer.count for model, layer in sorted(selection.layers.items())}
    details = vector.vector_details(plan, gpkgs, counts, [f.value for f in formats])
    return Produced(files, details)


def _progress(task_id: str, tasks: Progress) -> Callable[[float], None]:
    """Progress within the Package step's share, at most one write per second or per 10 %."""
    low, high = PACKAGE_PROGRESS
    last = [0.0, float(low)]

    def on_progress(fraction: float) -> None:
        value = low + (high - low) * fraction
        if value - last[1] >= 10 or time.monotonic() - last[0] >= 1.0:
            last[0], last[1] = time.monotonic(), value
            tasks.report_progress(task_id, int(value))

    return on_progress


def run(
    task_id: str,
    plan_key: str,
    tasks: Progress,
    scratch: Store,
    threads: int,
    gdal_options: dict[str, str],
    now: Callable[[], datetime],
    retention_days: int = 14,
    vector_part_bytes: int = 100 * 1024**2,
    merge_tolerating: float | None = None,
    sources: FileSource | None = None,
) -> dict[str, Any]:
    """Render the whole export in this invocation (the single path), or with ``merge_tolerating`` (the
    share of failed work items it may redo) assemble a fanned-out export's parts; then deliver it. A run
    after a pause (or any re-run) that finds the package staged and intact reuses it."""
    pause.boundary(tasks, task_id)
    staged = _staged(task_id, scratch)
    if staged is not None:
        return {"taskId": task_id, "files": staged}
    plan = ExportPlan.model_validate(scratch.get_json(plan_key))
    with tempfile.TemporaryDirectory(prefix="geoexport-") as tmp:
        workdir = Path(tmp)
        if merge_tolerating is not None:
            produced = _merged(plan, workdir, scratch, threads, gdal_options, merge_tolerating)
        elif plan.format is PlanFormat.VECTOR:
            produced = _vector(plan, workdir, scratch, vector_part_bytes, sources, _progress(task_id, tasks))
        elif plan.format is PlanFormat.GPKG and plan.heights is not None:
            produced = _dem_gpkg(plan, workdir, threads, gdal_options)
        elif plan.format is PlanFormat.GTIFF:
            produced = _gtiff(plan, workdir, threads, gdal_options)
        else:
            produced = _gpkg(plan, workdir, threads, gdal_options, _progress(task_id, tasks))
        files = _deliver(task_id, plan, produced, workdir, scratch, now, retention_days)
    scratch.put_json(staged_key(task_id), {"files": files})
    tasks.report_progress(task_id, PACKAGE_PROGRESS[1])
    return {"taskId": task_id, "files": files}


def staged_key(task_id: str) -> str:
    return f"{scratch_prefix(task_id)}packaged.json"


def _staged(task_id: str, scratch: Store) -> list[dict[str, Any]] | None:
    """The files an earlier run of this step staged, if every one is still there with its size."""
    if scratch.head(staged_key(task_id)) is None:
        return None
    files: list[dict[str, Any]] = scratch.get_json(staged_key(task_id))["files"]
    for entry in files:
        head = scratch.head(str(entry["key"]))
        if head is None or int(head.get("ContentLength", -1)) != int(entry["size"]):
            return None
    return files


def run_item(
    task_id: str,
    plan_key: str,
    item: WorkItem,
    total: int,
    tasks: ItemProgress,
    scratch: Store,
    threads: int,
    gdal_options: dict[str, str],
) -> dict[str, Any]:
    """One work item of a fanned-out export: its part, under a key a retry overwrites; progress counts
    finished items. A paused task renders no more items; an item whose part is already stored (a resumed
    export) is not rendered again."""
    from geoexport.raster.source import gdal_path

    pause.boundary(tasks, task_id)
    key = fanout.part_key(task_id, item.index)
    tiles: int | None = None  # None: the part was there already
    if scratch.head(key) is None:
        plan = ExportPlan.model_validate(scratch.get_json(plan_key))
        with tempfile.TemporaryDirectory(prefix="geoexport-") as tmp:
            path = Path(tmp) / "part.gpkg"
            tiles = fanout.render_part(plan, item, gdal_path(plan.sourceUri), path, threads, gdal_options)
            scratch.put_file(key, path, sha256_file(path), "application/geopackage+sqlite3")
    done = tasks.finish_item(task_id, item.index)
    low, high = PACKAGE_PROGRESS
    tasks.report_progress(task_id, low + (high - low - 5) * done // max(1, total))  # the merge has the rest
    return {"taskId": task_id, "index": item.index, "tiles": tiles}


def _deliver(
    task_id: str,
    plan: ExportPlan,
    produced: Produced,
    workdir: Path,
    scratch: Store,
    now: Callable[[], datetime],
    retention_days: int,
) -> list[dict[str, Any]]:
    """Pack the produced files, describe them (metadata JSON, STAC Item), and stage all in scratch."""
    kinds = {path.name: kind for kind, path in produced.files}
    delivered = pack(
        [path for _, path in produced.files], plan.packer, plan.maxPartSize, workdir, plan.fileStem
    )
    entries = [_entry(kinds.get(path.name, ArtifactType.BUNDLE), path) for path in delivered]
    look = _quicklook(plan, produced, workdir)
    looks = [look] if look is not None else []  # listed after the metadata: data, metadata, quicklook, STAC
    if look is not None:
        produced.details["quicklook"] = {
            "name": look["name"],
            "crs": "EPSG:3857",
            "bounds": look["bounds"],
            "width": look["width"],
            "height": look["height"],
        }
    created = now()
    public = [_public(e) for e in entries + looks]
    # What the bundles hold (the files themselves when nothing is packed).
    inside = (
        [_public(_entry(k, p)) | {"name": member(p, workdir)} for k, p in produced.files]
        if plan.packer is not Packer.NONE
        else public
    )
    metadata = build_metadata(
        plan=plan, files=public, contents=inside, details=produced.details, created_at=created
    )
    meta_path = workdir / f"{plan.fileStem}.json"
    meta_path.write_text(json.dumps(metadata, indent=2))
    entries += [_entry(ArtifactType.METADATA, meta_path), *looks]
    item = build_item(
        item_id=plan.fileStem,
        footprint=plan.footprint,
        bbox=plan.bounds,
        epsg=int(plan.crs),
        files=[_public(e) for e in entries],
        created=created,
        expires=created + timedelta(days=retention_days),
        record_id=plan.recordId,
        record_name=plan.recordName,
        description=plan.description,
    )
    stac_path = workdir / f"{plan.fileStem}.stac.json"
    stac_path.write_text(json.dumps(item, indent=2))
    entries.append(_entry(ArtifactType.STAC, stac_path))
    files = []
    for entry in entries:
        path: Path = entry.pop("path")
        key = f"{scratch_prefix(task_id)}{path.name}"
        scratch.put_file(key, path, str(entry["sha256"]), media_type(str(entry["type"]), path.name))
        files.append({**entry, "key": key})
    return files


def _quicklook(plan: ExportPlan, produced: Produced, workdir: Path) -> dict[str, Any] | None:
    """The small PNG preview of a raster export (drawn from the produced file, before packing); None for
    vector exports, or when it cannot be drawn: a preview is not worth failing the export for."""
    if plan.format is PlanFormat.VECTOR:
        return None
    rasters = (ArtifactType.GPKG, ArtifactType.GTIFF)
    data = next((path for kind, path in produced.files if kind in rasters), None)
    if data is None:
        return None
    from rasterio.errors import RasterioError

    from geoexport.raster.quicklook import render_quicklook

    try:
        look = render_quicklook(data, workdir / f"{plan.fileStem}.quicklook.png", coarsest_deg=_common(plan))
    except RasterioError as error:
        logger.warning("no quicklook for %s: %s", plan.taskId, error)
        return None
    entry = _entry(ArtifactType.QUICKLOOK, look.path)
    entry.update(bounds=[round(v, 9) for v in look.bounds], width=look.width, height=look.height)
    return entry


def _common(plan: ExportPlan) -> float:
    """The resolution (deg/px) of the finest GeoPackage zoom that covers the whole export (features of the
    ROI may have finer zooms of their own); 0 for a GeoTIFF, which has one resolution everywhere."""
    if plan.format is not PlanFormat.GPKG or plan.heights is not None:
        return 0.0
    whole = shape(plan.footprint).area
    covering = [level.zoom for level in plan.levels if shape(level.region).area >= whole * (1 - 1e-6)]
    return grid.resolution(max(covering)) if covering else 0.0


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as the metadata and STAC Item list it (without the local path)."""
    return {k: v for k, v in entry.items() if k != "path"}


def _entry(kind: ArtifactType, path: Path) -> dict[str, Any]:
    return {
        "type": kind,
        "name": path.name,
        "path": path,
        "size": path.stat().st_size,
        "sha256": sha256_file(path),
    }
