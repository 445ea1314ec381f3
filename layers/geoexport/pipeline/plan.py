"""The export plan that Clip writes and Package follows (small JSON kept in the scratch area)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from geoexport.models.tasks import Packer
from geoexport.pipeline.selection import Selection


class PlanFormat(StrEnum):
    """What Package renders: the request's format for RASTER, vector layers for VECTOR."""

    GPKG = "GPKG"  # tiled, WorldCRS84Quad
    GTIFF = "GTiff"  # a COG in ``crs``
    VECTOR = "VECTOR"  # GeoPackage vector layers


class LevelPlan(BaseModel):
    zoom: int
    region: dict[str, Any]  # GeoJSON geometry, EPSG:4326: ROI features of this zoom, clipped to the source
    tiles: list[int]  # min_col, min_row, max_col, max_row
    tileCount: int  # tiles of the range that intersect the region


class HeightsPlan(BaseModel):
    """A DEM export: what the heights are (from the catalog record)."""

    unit: str | None = None
    verticalDatum: str | None = None


class ExportPlan(BaseModel):
    taskId: str
    recordId: str
    recordName: str
    productVersion: str
    sourceUri: str
    sourceResolutionDeg: float
    fileStem: str
    maxZoom: int
    levels: list[LevelPlan]
    footprint: dict[str, Any]  # what is actually exported: union of clipped features
    bounds: list[float]
    description: str
    roi: dict[str, Any]
    createdAt: datetime
    format: PlanFormat = PlanFormat.GPKG
    crs: str = "4326"
    resolutionDeg: float = 0.0  # GTiff: the finest resolution asked for
    packer: Packer = Packer.NONE
    maxPartSize: int | None = None
    selection: Selection | None = None  # VECTOR: the clipped features' chunks in scratch, and their summary
    filters: dict[str, Any] = {}  # VECTOR: model / entityType / filter asked for
    records: dict[str, Any] = {}  # VECTOR: formats, fields, csv, one_file_per_object (RecordOptions)
    changes: dict[str, Any] | None = None  # incremental VECTOR: {since, until, deleted: [...]}
    notes: list[str] = []  # what Clip changed from what was asked (also on the task)
    heights: HeightsPlan | None = None  # DEM: float32 heights instead of imagery

    @property
    def plan_key(self) -> str:
        return plan_key(self.taskId)


def scratch_prefix(task_id: str) -> str:
    return f"scratch/{task_id}/"


def plan_key(task_id: str) -> str:
    return f"{scratch_prefix(task_id)}plan.json"


def exports_prefix(task_id: str) -> str:
    return f"exports/{task_id}/"
