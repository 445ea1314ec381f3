"""VECTOR exports: the caller's features meeting the AoI, clipped to it, as GeoPackage vector layers.

Clip selects (the feature index, then an exact shapely test) and clips in EPSG:4326; Package reprojects with
PROJ (pyproj) and writes one layer per model with pyogrio, splitting into several GeoPackages when one
would be larger than the configured size (as CLC+ delivers its vector products).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from geoexport.errors import UnprocessableRequest
from geoexport.features.cql2 import PropertyFilter, filterable, parse_filter
from geoexport.features.feature import Feature, FileState
from geoexport.features.journal import Change
from geoexport.models.tasks import TaskRecord
from geoexport.pipeline.plan import ExportPlan, PlanFormat, scratch_prefix

#: The request parameters that say what files a VECTOR export writes (geoexport.packaging.records).
RECORD_PARAMETERS = ("formats", "fields", "csv", "one_file_per_object", "files", "flat", "filename_template")
#: The fields every layer has before the model's properties.
BASE_FIELDS = ("urn", "featureId", "entityType", "version")


class FeatureSource(Protocol):
    def changed_since(
        self, owner: str, since: datetime, until: datetime
    ) -> tuple[list[Feature], list[Change]]: ...

    def list(
        self,
        owner: str,
        bbox: tuple[float, float, float, float] | None,
        model: str | None,
        entity_type: str | None,
        limit: int,
        next_token: str | None,
        where: PropertyFilter | None = None,
    ) -> tuple[list[Feature], str | None]: ...


def features_key(task_id: str) -> str:
    return f"{scratch_prefix(task_id)}features.json"


def _dimension_parts(geometry: BaseGeometry, dimension: int) -> BaseGeometry | None:
    """The parts of a clip result with the source's dimension (a polygon touching the AoI edge leaves a
    line or point behind; that is not part of the export)."""
    parts = [
        g for g in shapely.get_parts(geometry) if shapely.get_dimensions(g) == dimension and not g.is_empty
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def clip_feature(feature: Feature, aoi: BaseGeometry) -> BaseGeometry | None:
    """The feature's geometry inside the AoI (None when it only touches it or lies outside)."""
    if feature.geometry is None:
        return None
    geometry = shapely.make_valid(shape(feature.geometry))
    if not aoi.intersects(geometry):
        return None
    if aoi.contains(geometry):
        return geometry
    dimension = int(shapely.get_dimensions(geometry))
    if geometry.geom_type == "GeometryCollection":
        return None if (clipped := geometry.intersection(aoi)).is_empty else clipped
    return _dimension_parts(geometry.intersection(aoi), dimension)


def _exported(feature: Feature, clipped: BaseGeometry, with_files: bool = False) -> dict[str, Any]:
    exported = {
        "type": "Feature",
        "geometry": mapping(clipped),
        "properties": {
            "urn": feature.urn,
            "featureId": feature.id,
            "entityType": feature.entityType.value,
            "version": feature.version,
            "model": feature.model,
            "properties": feature.properties,
        },
    }
    if with_files:  # ``parameters.files``: what Package copies into the export (stored files only)
        exported["files"] = [
            {
                "filename": f.attributes.filename,
                "dataType": f.attributes.dataType.value,
                "mimeType": f.attributes.mimeType,
                "algorithm": f.attributes.algorithm,
                "checksum": f.attributes.checksum,
                "url": f.locations[0].url,
            }
            for f in feature.files
            if f.state is FileState.STORED and f.locations
        ]
    return exported


def _aoi(task: TaskRecord) -> BaseGeometry:
    aoi = shapely.union_all([shape(f.geometry_mapping()) for f in task.roi.features])
    shapely.prepare(aoi)
    return aoi


def _where(task: TaskRecord) -> PropertyFilter | None:
    """``parameters.filter`` (CQL2 text; checked when the export was requested)."""
    text = task.request.parameters.get("filter")
    return parse_filter(text, "parameters.filter") if isinstance(text, str) and text else None


def select(task: TaskRecord, source: FeatureSource) -> list[dict[str, Any]]:
    """The task owner's features (of the asked model / entity type, passing the filter) clipped to the
    AoI, as GeoJSON."""
    aoi = _aoi(task)
    model = task.request.parameters.get("model")
    entity = task.request.parameters.get("entityType")
    where = _where(task)
    with_files = task.request.parameters.get("files") is True
    x0, y0, x1, y1 = (float(v) for v in aoi.bounds)
    selected: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page, token = source.list(task.owner, (x0, y0, x1, y1), model, entity, 5000, token, where)
        for feature in page:
            clipped = clip_feature(feature, aoi)
            if clipped is not None:
                selected.append(_exported(feature, clipped, with_files))
        if token is None:
            return selected


def change_window(task: TaskRecord) -> tuple[datetime, datetime] | None:
    """An incremental export's window: ``parameters.changedSince`` to ``changedUntil`` (default: when the
    task was created); None for a whole export."""
    from geoexport.tasks.prepare import changed_time

    params = task.request.parameters
    since = changed_time(params.get("changedSince"))
    if since is None:
        return None
    return since, changed_time(params.get("changedUntil")) or task.createdAt


def select_changes(
    task: TaskRecord, source: FeatureSource
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An incremental export: the owner's features changed in the window (current versions, filtered and
    clipped as a whole export would be), and those deleted in it whose extent met the AoI (of the model and
    type asked for; the filter cannot be applied to what is gone, so every such deletion is listed)."""
    window = change_window(task)
    assert window is not None, "only for incremental exports"
    aoi = _aoi(task)
    model = task.request.parameters.get("model")
    entity = task.request.parameters.get("entityType")
    where = _where(task)
    changed, deleted = source.changed_since(task.owner, *window)
    selected = []
    for feature in changed:
        if (model and feature.model != model) or (entity and feature.entityType.value != entity):
            continue
        if where is not None and not where.matches(filterable(feature)):
            continue
        clipped = clip_feature(feature, aoi)
        if clipped is not None:
            selected.append(_exported(feature, clipped, task.request.parameters.get("files") is True))
    deletions = [
        {
            "urn": change.urn,
            "featureId": change.featureId,
            "model": change.model,
            "entityType": change.entityType,
            "version": change.version,
            "deletedAt": change.at.isoformat(),
        }
        for change in deleted
        if (not model or change.model == model)
        and (not entity or change.entityType == entity)
        and (change.bbox is None or aoi.intersects(shapely.box(*change.bbox)))
    ]
    return selected, deletions


def build_vector_plan(
    task: TaskRecord, features: list[dict[str, Any]], deleted: list[dict[str, Any]] | None = None
) -> ExportPlan:
    """``deleted`` (incremental exports): what the metadata lists as deleted. An incremental export may be
    empty (nothing changed is an answer); a whole one may not."""
    window = change_window(task)
    if not features and window is None:
        raise UnprocessableRequest("no feature of yours meets the ROI (with the asked model and entityType)")
    aoi = shapely.union_all([shape(f.geometry_mapping()) for f in task.roi.features])
    extent = (
        shapely.box(*shapely.total_bounds([shape(f["geometry"]) for f in features]))
        if features
        else aoi.envelope
    )
    exported = extent.intersection(aoi.envelope)  # what the files cover (a box: no union of everything)
    params = task.request.parameters
    label = "_".join(str(params[k]) for k in ("model", "entityType") if params.get(k)) or "features"
    stem = re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")
    return ExportPlan(
        taskId=str(task.id),
        recordId="features",
        recordName="feature repository",
        productVersion="",
        sourceUri="",
        sourceResolutionDeg=0.0,
        fileStem=f"{stem}_epsg{task.request.artifactCRS}_{task.createdAt:%Y_%m_%d}_{str(task.id)[:8]}",
        maxZoom=0,
        levels=[],
        footprint=mapping(exported if not exported.is_empty else aoi.envelope),
        bounds=list(exported.bounds if not exported.is_empty else aoi.bounds),
        description=task.request.description,
        roi=task.roi.model_dump(mode="json", exclude_none=True),
        createdAt=task.createdAt,
        format=PlanFormat.VECTOR,
        crs=task.request.artifactCRS,
        packer=task.request.packer,
        maxPartSize=task.request.maxPartSize,
        featuresKey=features_key(str(task.id)),
        filters={k: params[k] for k in ("model", "entityType", "filter") if params.get(k)},
        records={k: params[k] for k in RECORD_PARAMETERS if k in params},
        changes=None
        if window is None
        else {"since": window[0].isoformat(), "until": window[1].isoformat(), "deleted": deleted or []},
    )


# ---------------------------------------------------------------------------------------------- writing


@dataclass
class Layer:
    name: str  # the model
    features: list[dict[str, Any]]


def layer_name(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", model) or "features"


def layers_of(features: Iterable[dict[str, Any]]) -> list[Layer]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for feature in features:
        grouped.setdefault(str(feature["properties"]["model"]), []).append(feature)
    return [Layer(layer_name(model), items) for model, items in sorted(grouped.items())]


_MULTI = {0: "MultiPoint", 1: "MultiLineString", 2: "MultiPolygon"}


def _column(values: list[Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """One attribute column and its null mask: booleans, integers, reals or text (lists and objects as
    JSON text). Each keeps its own type in the GeoPackage; absent values are nulls, not zeros or "None"."""
    present = [v for v in values if v is not None]
    mask = np.array([v is None for v in values]) if len(present) < len(values) else None
    if present and all(isinstance(v, bool) for v in present):
        return np.array([bool(v) for v in values], dtype=np.bool_), mask
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return np.array([v or 0 for v in values], dtype=np.int64), mask
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return np.array([float("nan") if v is None else float(v) for v in values]), None  # NaN is null
    text = [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values]
    return np.array(text, dtype=object), None


def write_layers(path: Path, layers: list[Layer], crs: str) -> None:
    """Write ``layers`` (geometries already in ``crs``) into one GeoPackage."""
    from pyogrio.raw import write

    for index, layer in enumerate(layers):
        geometries = [shape(f["geometry"]) for f in layer.features]
        dimensions = {int(shapely.get_dimensions(g)) for g in geometries}
        kinds = {g.geom_type for g in geometries}
        if len(dimensions) == 1 and "GeometryCollection" not in kinds:
            geometry_type = _MULTI[dimensions.pop()]  # one type per layer: promote to Multi*
            geometries = [_as_multi(g) for g in geometries]
        else:
            geometry_type = "Unknown"
        wkb = np.array(shapely.to_wkb(geometries), dtype=object)
        properties = [f["properties"] for f in layer.features]
        model_keys = sorted({k for p in properties for k in p["properties"]} - set(BASE_FIELDS))
        columns = [[p[k] for p in properties] for k in BASE_FIELDS]
        columns += [[p["properties"].get(k) for p in properties] for k in model_keys]
        arrays, masks = zip(*(_column(values) for values in columns), strict=True)
        write(
            str(path),
            wkb,
            list(arrays),
            field_mask=list(masks),
            fields=[*BASE_FIELDS, *model_keys],
            geometry_type=geometry_type,
            crs=f"EPSG:{crs}",
            layer=layer.name,
            driver="GPKG",
            append=index > 0,
            # GeoPackage 1.2: read without warnings by GDAL/QGIS releases still in service (1.4 is not).
            dataset_options={} if index else {"VERSION": "1.2"},
        )


def _as_multi(geometry: BaseGeometry) -> BaseGeometry:
    if geometry.geom_type.startswith("Multi"):
        return geometry
    return {
        "Point": shapely.MultiPoint,
        "LineString": shapely.MultiLineString,
        "Polygon": shapely.MultiPolygon,
    }[geometry.geom_type]([geometry])


def reproject(features: list[dict[str, Any]], crs: str) -> list[dict[str, Any]]:
    """EPSG:4326 -> ``crs`` with PROJ (pyproj, longitude first); nothing to do for 4326. Not rasterio's
    GDAL: the VECTOR Package function carries pyogrio's GDAL only (two GDAL copies would not fit a Lambda)."""
    if crs == "4326" or not features:
        return features
    from pyproj import Transformer

    transformer = Transformer.from_crs("EPSG:4326", f"EPSG:{crs}", always_xy=True)

    def move(coords: np.ndarray) -> np.ndarray:
        moved = transformer.transform(*coords.T)
        return np.column_stack(moved)

    geometries = [shape(f["geometry"]) for f in features]
    has_z = [bool(shapely.has_z(g)) for g in geometries]
    moved = [shapely.transform(g, move, include_z=z) for g, z in zip(geometries, has_z, strict=True)]
    return [{**f, "geometry": mapping(g)} for f, g in zip(features, moved, strict=True)]


def write_parts(features: list[dict[str, Any]], crs: str, limit: int, workdir: Path, stem: str) -> list[Path]:
    """One GeoPackage, or (when it would exceed ``limit`` bytes) parts of about ``limit``, each halved again
    until it fits unless one feature alone is larger. Features stay whole and keep their layer."""
    whole = workdir / f"{stem}.gpkg"
    write_layers(whole, layers_of(features), crs)
    size = whole.stat().st_size
    if size <= limit or len(features) == 1:
        return [whole]
    whole.unlink()
    pending = _split(features, math.ceil(len(features) / math.ceil(size / limit)))
    written: list[Path] = []
    while pending:
        chunk = pending.pop(0)
        path = workdir / f"{stem}.chunk{len(written)}.gpkg"
        write_layers(path, layers_of(chunk), crs)
        if path.stat().st_size > limit and len(chunk) > 1:
            path.unlink()
            pending[:0] = _split(chunk, math.ceil(len(chunk) / 2))
            continue
        written.append(path)
    return [path.rename(workdir / f"{stem}_part{n:02d}.gpkg") for n, path in enumerate(written, start=1)]


def _split(features: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [features[i : i + size] for i in range(0, len(features), max(1, size))]


def vector_details(
    plan: ExportPlan, paths: list[Path], counts: dict[str, int], formats: list[str] | None = None
) -> dict[str, Any]:
    details = {
        "format": "GPKG",
        "formats": formats or ["GPKG"],
        "domain": "VECTOR",
        "crs": f"EPSG:{plan.crs}",
        "filters": plan.filters,
        "layers": counts,
        "parts": len(paths),
    }
    if plan.changes is not None:  # incremental: the window, and what was deleted in it
        details["incremental"] = {**plan.changes, "changed": sum(counts.values())}
    return details
