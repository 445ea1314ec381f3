"""Clip: intersect each ROI feature with the record's footprint and plan the tiles of every zoom."""

from __future__ import annotations

import re
from typing import Any, Protocol
from uuid import UUID

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from geoexport.errors import UnprocessableRequest
from geoexport.geometry import grid
from geoexport.models.catalog import CatalogRecord
from geoexport.models.tasks import Domain, ExportFormat, TaskRecord
from geoexport.pipeline import fanout, pause, vector
from geoexport.pipeline.items import FanOut
from geoexport.pipeline.plan import ExportPlan, HeightsPlan, LevelPlan, PlanFormat, plan_key
from geoexport.raster.source import describe, gdal_env, gdal_path


class Store(vector.Scratch, Protocol):
    """The exports bucket's scratch area: the plan, and a VECTOR export's selection."""


def count_tiles(region: BaseGeometry, tiles: grid.TileRange) -> int:
    """Exact number of tiles in ``tiles`` whose area meets ``region`` (vectorised with shapely)."""
    span = grid.TILE_SIZE * grid.resolution(tiles.zoom)
    cols = np.arange(tiles.min_col, tiles.max_col + 1)
    rows = np.arange(tiles.min_row, tiles.max_row + 1)
    cc, rr = np.meshgrid(cols, rows)
    minx = -180.0 + cc.ravel() * span
    maxy = 90.0 - rr.ravel() * span
    boxes = shapely.box(minx, maxy - span, minx + span, maxy)
    shapely.prepare(region)
    hits = shapely.intersects(region, boxes) & ~shapely.touches(region, boxes)
    return int(hits.sum())


def file_stem(task: TaskRecord, record: CatalogRecord, max_zoom: int) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "_", record.name).strip("_") or "export"
    version = record.productVersion.replace(".", "_")
    grid_part = (
        f"z{max_zoom}" if task.request.format is ExportFormat.GPKG else f"epsg{task.request.artifactCRS}"
    )
    return f"{name}_{version}_{grid_part}_{task.createdAt:%Y_%m_%d}_{str(task.id)[:8]}"


def build_plan(task: TaskRecord, record: CatalogRecord) -> ExportPlan:
    footprint = shape(record.footprint)
    clipped: list[tuple[BaseGeometry, int, int]] = []
    notes: list[str] = []
    for index, feature in enumerate(task.roi.features):
        whole = shape(feature.geometry_mapping())
        part = whole.intersection(footprint)
        if not part.is_empty and part.area > 0:
            clipped.append((part, feature.properties.min_zoom, feature.properties.max_zoom))
        outside = 1 - (part.area / whole.area if whole.area > 0 else 1)
        if outside > 1e-6:
            notes.append(
                f"features[{index}]: {outside:.1%} of it lies outside the footprint of record {record.name}; "
                "only the part inside is exported"
            )
    if not clipped:
        raise UnprocessableRequest("the ROI does not overlap the record's footprint")
    max_zoom = max(z for _, _, z in clipped)
    levels: list[LevelPlan] = []
    for zoom in range(max_zoom + 1):
        parts = [geometry for geometry, low, high in clipped if low <= zoom <= high]
        if not parts:
            continue
        region = shapely.union_all(parts)
        tiles = grid.tile_range(region.bounds, zoom)
        levels.append(
            LevelPlan(
                zoom=zoom, region=mapping(region), tiles=tiles.as_list(), tileCount=count_tiles(region, tiles)
            )
        )
    exported = shapely.union_all([geometry for geometry, _, _ in clipped])
    return ExportPlan(
        taskId=str(task.id),
        recordId=str(record.id),
        recordName=record.name,
        productVersion=record.productVersion,
        sourceUri=record.source.uri,
        sourceResolutionDeg=record.maxResolutionDeg,
        fileStem=file_stem(task, record, max_zoom),
        maxZoom=max_zoom,
        levels=levels,
        footprint=mapping(exported),
        bounds=list(exported.bounds),
        description=task.request.description,
        roi=task.roi.model_dump(mode="json", exclude_none=True),
        createdAt=task.createdAt,
        format=PlanFormat(task.request.format.value),
        crs=task.request.artifactCRS,
        resolutionDeg=min(feature.properties.resolution for feature in task.roi.features),
        packer=task.request.packer,
        maxPartSize=task.request.maxPartSize,
        notes=notes,
        heights=(
            HeightsPlan(unit=record.heightUnit, verticalDatum=record.verticalDatum)
            if record.domain == Domain.DEM.value
            else None
        ),
    )


class TaskStore(pause.TaskReader, Protocol):
    def get(self, task_id: UUID | str) -> TaskRecord: ...
    def start(self, task_id: UUID | str) -> TaskRecord: ...
    def report_progress(self, task_id: UUID | str, progress: int) -> bool: ...
    def add_notes(self, task_id: UUID | str, notes: list[str]) -> None: ...


class CatalogStore(Protocol):
    def get(self, record_id: UUID | str) -> CatalogRecord: ...


def run(
    task_id: str,
    tasks: TaskStore,
    catalog: CatalogStore,
    scratch: Store,
    gdal_options: dict[str, str],
    features: vector.FeatureSource | None = None,
    limits: FanOut | None = None,
    select: vector.SelectLimits | None = None,
) -> dict[str, Any]:
    """Mark the task running, check the source opens, write the plan; returns the plan's key, and for a big
    GeoPackage the work items the Distributed Map runs (see :mod:`geoexport.pipeline.fanout`).

    VECTOR: select the owner's features in the AoI and clip them, in chunks written to scratch beside the
    plan; when ``select.seconds`` run out first, ``more`` asks the state machine to call Clip again."""
    pause.boundary(tasks, task_id)
    task = tasks.start(task_id)
    if task.request.domain is Domain.VECTOR:
        if features is None:
            raise UnprocessableRequest("this deployment has no feature repository")
        if vector.change_window(task) is not None:
            selection = vector.select_changed(task, features, scratch, select or vector.SelectLimits())
        else:
            selection = vector.select(task, features, scratch, select or vector.SelectLimits())
        if not selection.done:  # the state machine calls Clip again; it resumes at the saved cursor
            return {"taskId": task_id, "planKey": plan_key(task_id), "domain": Domain.VECTOR.value,
                    "more": True, **fanout.SINGLE_PATH}  # fmt: skip
        plan = vector.build_vector_plan(task, selection)
        scratch.put_json(plan_key(task_id), plan.model_dump(mode="json"))
        tasks.report_progress(task_id, 10)
        return {
            "taskId": task_id,
            "planKey": plan_key(task_id),
            "domain": Domain.VECTOR.value,
            "more": False,
            **fanout.SINGLE_PATH,
        }
    assert task.request.catalogRecordID is not None, "RASTER tasks name their record"
    record = catalog.get(task.request.catalogRecordID)
    with gdal_env(gdal_options):
        describe(gdal_path(record.source.uri))  # fails fast (SourceUnreadable) if the header is broken
    plan = build_plan(task, record)
    tasks.add_notes(task_id, plan.notes)  # what the user gets differs from what was asked: say so
    scratch.put_json(plan_key(task_id), plan.model_dump(mode="json"))
    work = fanout.plan_items(plan, scratch, limits or FanOut())
    tasks.report_progress(task_id, 10)
    return {
        "taskId": task_id,
        "planKey": plan_key(task_id),
        "domain": task.request.domain.value,
        "more": False,
        **work,
    }
