"""VECTOR exports: the caller's features meeting the AoI, clipped to it, as GeoPackage vector layers.

Clip selects (the feature index, then an exact shapely test) and clips in EPSG:4326, a page at a time into
chunks in scratch (geoexport.pipeline.selection), over as many calls as it needs; Package reprojects each
chunk with PROJ (pyproj) and appends it to one layer per model with pyogrio, starting another GeoPackage
when one would grow larger than the configured size (as CLC+ delivers its vector products).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
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
from geoexport.pipeline.selection import ChunkStore, Kind, Selection, encode_chunk

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


def chunk_key(task_id: str, number: int) -> str:
    return f"{scratch_prefix(task_id)}features/{number:05d}.jsonl"


def selection_key(task_id: str) -> str:
    return f"{scratch_prefix(task_id)}selection.json"


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


def exported(feature: Feature, clipped: BaseGeometry, with_files: bool = False) -> dict[str, Any]:
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
                "filesize": f.attributes.filesize,  # set when the stored file was verified
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


class Scratch(ChunkStore, Protocol):
    def put_json(self, key: str, document: Any) -> None: ...
    def get_json(self, key: str) -> Any: ...
    def head(self, key: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class SelectLimits:
    """How a VECTOR export's selection is paced (template parameters, see geoexport.settings)."""

    seconds: float = 200.0  # an invocation stops reading pages after this (Clip's timeout is 300 s)
    page: int = 5000  # features per index page, and so per chunk at most
    features: int = 2_000_000  # the most one export may hold (what one Package invocation writes in time)
    file_bytes: int = 4 * 1024**3  # ``files``: the most stored files' bytes one export copies (and packs)


def _check(selection: Selection, limits: SelectLimits) -> None:
    """Fail a selection that one Package invocation could not write (in its time, or its scratch space)."""
    narrow = "narrow the ROI, or select by model, entityType or filter"
    if selection.count > limits.features:
        raise UnprocessableRequest(
            f"the export holds more than {limits.features:,} features ({selection.count:,} read so far), "
            f"more than one export writes within its time: {narrow}"
        )
    if selection.fileBytes > limits.file_bytes:
        raise UnprocessableRequest(
            f"the features' stored files add up to more than {limits.file_bytes / 1024**3:.1f} GiB "
            f"({selection.fileBytes / 1024**3:.1f} GiB in {selection.fileCount:,} files so far), more than "
            f"one export copies: {narrow}, or export without files"
        )


def select(
    task: TaskRecord,
    source: FeatureSource,
    scratch: Scratch,
    limits: SelectLimits = SelectLimits(),
    clock: Callable[[], float] = time.monotonic,
) -> Selection:
    """Select the task owner's features (of the asked model / entity type, passing the filter) clipped to
    the AoI, page by page from the saved cursor on, each page's into its own chunk; stop when the index has
    no more (``done``) or when ``limits.seconds`` have passed (the state machine calls Clip again; at least
    one page per call)."""
    task_id = str(task.id)
    key = selection_key(task_id)
    selection = Selection.model_validate(scratch.get_json(key)) if scratch.head(key) else Selection()
    if selection.done:
        return selection
    selection.invocations += 1
    aoi = _aoi(task)
    model = task.request.parameters.get("model")
    entity = task.request.parameters.get("entityType")
    where = _where(task)
    with_files = task.request.parameters.get("files") is True
    x0, y0, x1, y1 = (float(v) for v in aoi.bounds)
    started = clock()
    while True:
        page, token = source.list(
            task.owner, (x0, y0, x1, y1), model, entity, limits.page, selection.token, where
        )
        chunk: list[dict[str, Any]] = []
        geometries: list[BaseGeometry] = []
        for feature in page:
            clipped = clip_feature(feature, aoi)
            if clipped is not None:
                chunk.append(exported(feature, clipped, with_files))
                geometries.append(clipped)
        _store_chunk(task_id, scratch, selection, chunk, geometries)
        _check(selection, limits)
        selection.token, selection.done = token, token is None
        scratch.put_json(key, selection.model_dump(mode="json"))
        if selection.done or clock() - started >= limits.seconds:
            return selection


def _store_chunk(
    task_id: str, scratch: Scratch, selection: Selection, chunk: list[dict[str, Any]], geometries: list[Any]
) -> None:
    """Write ``chunk`` under the selection's next chunk key and count it in (nothing for an empty page)."""
    if not chunk:
        return
    key = chunk_key(task_id, len(selection.chunks))
    scratch.put_bytes(key, encode_chunk(chunk), "application/geo+json-seq")
    selection.add(chunk, geometries)
    selection.chunks.append(key)


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
            selected.append(exported(feature, clipped, task.request.parameters.get("files") is True))
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


def select_changed(
    task: TaskRecord, source: FeatureSource, scratch: Scratch, limits: SelectLimits
) -> Selection:
    """An incremental export's selection (one invocation: the journal's window is read whole), in chunks
    as a whole export's."""
    selected, deleted = select_changes(task, source)
    selection = Selection(done=True, invocations=1, deleted=deleted)
    for start in range(0, len(selected), limits.page):
        chunk = selected[start : start + limits.page]
        _store_chunk(str(task.id), scratch, selection, chunk, [shape(f["geometry"]) for f in chunk])
        _check(selection, limits)
    scratch.put_json(selection_key(str(task.id)), selection.model_dump(mode="json"))
    return selection


def build_vector_plan(task: TaskRecord, selection: Selection) -> ExportPlan:
    """An incremental export may be empty (nothing changed is an answer, its metadata lists what was
    deleted); a whole one may not."""
    window = change_window(task)
    if not selection.count and window is None:
        raise UnprocessableRequest("no feature of yours meets the ROI (with the asked model and entityType)")
    aoi = shapely.union_all([shape(f.geometry_mapping()) for f in task.roi.features])
    extent = shapely.box(*selection.bounds) if selection.bounds else aoi.envelope
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
        selection=selection,
        filters={k: params[k] for k in ("model", "entityType", "filter") if params.get(k)},
        records={k: params[k] for k in RECORD_PARAMETERS if k in params},
        changes=None
        if window is None
        else {
            "since": window[0].isoformat(),
            "until": window[1].isoformat(),
            "deleted": selection.deleted or [],
        },
    )


# ---------------------------------------------------------------------------------------------- writing


def layer_name(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", model) or "features"


_MULTI = {0: "MultiPoint", 1: "MultiLineString", 2: "MultiPolygon"}


@dataclass(frozen=True)
class LayerSchema:
    """A model's GeoPackage layer, fixed before its first row: every chunk is written with these types."""

    name: str
    geometry_type: str  # Multi* when every geometry has one dimension, else "Unknown"
    fields: list[tuple[str, Kind]]  # BASE_FIELDS, then the (shaped) properties


def layer_schemas(
    selection: Selection, shown: list[tuple[str, str]] | None, files: bool
) -> dict[str, LayerSchema]:
    """Each model's layer. ``shown``: the asked ``fields`` as (property, column name), in that order; else
    every property of the model, sorted; with ``files`` a text column of the copied files' paths."""
    base = [("urn", Kind.TEXT), ("featureId", Kind.TEXT), ("entityType", Kind.TEXT), ("version", Kind.INT)]
    schemas = {}
    for model, stats in selection.layers.items():
        if shown is None:
            columns = [(name, stats.columns[name] or Kind.TEXT) for name in sorted(stats.columns)]
        else:
            columns = [(column, stats.columns.get(name) or Kind.TEXT) for name, column in shown]
        if files:
            columns = [c for c in columns if c[0] != "files"] + [("files", Kind.TEXT)]
        dimensions = stats.dimensions
        kind = _MULTI[dimensions[0]] if len(dimensions) == 1 and not stats.collections else "Unknown"
        fields = base + [c for c in columns if c[0] not in BASE_FIELDS]
        schemas[model] = LayerSchema(layer_name(model), kind, fields)
    return schemas


def _array(values: list[Any], kind: Kind) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """One column of a chunk in its layer's type, and its null mask (absent values are nulls, not zeros or
    "None"; reals use NaN)."""
    mask = np.array([v is None for v in values]) if any(v is None for v in values) else None
    if kind is Kind.BOOL:
        return np.array([bool(v) for v in values], dtype=np.bool_), mask
    if kind is Kind.INT:
        return np.array([v or 0 for v in values], dtype=np.int64), mask
    if kind is Kind.REAL:
        return np.array([float("nan") if v is None else float(v) for v in values]), None
    text = [None if v is None else v if isinstance(v, str) else json.dumps(v) for v in values]
    return np.array(text, dtype=object), None


class GeoPackageParts:
    """Chunks of features (in the export's CRS) appended to one layer per model: one GeoPackage, or, when
    it would exceed ``limit`` bytes, parts of at most ``limit`` (unless one feature alone is larger).

    A part's size is foreseen from its bytes per feature so far; a write that still overshoots is taken
    back (its rows deleted, or its new layer dropped, and the file vacuumed) and retried halved or in the
    next part. Features stay whole and keep their layer."""

    PROBE = 256  # the first write into a part: its bytes per feature are not known yet

    def __init__(
        self, workdir: Path, stem: str, crs: str, limit: int, schemas: dict[str, LayerSchema]
    ) -> None:
        self._workdir, self._stem, self._crs, self._limit = workdir, stem, crs, limit
        self._schemas = schemas
        self._parts: list[Path] = []
        self._next_part()

    def _next_part(self) -> None:
        self._parts.append(self._workdir / f"{self._stem}.part{len(self._parts) + 1}.gpkg")
        self._count = 0

    def write(self, features: list[dict[str, Any]], geometries: np.ndarray[Any, Any]) -> None:
        """Append a chunk: ``features`` as exported, ``geometries`` theirs in the export's CRS."""
        grouped: dict[str, list[int]] = {}
        for index, feature in enumerate(features):
            grouped.setdefault(str(feature["properties"]["model"]), []).append(index)
        for model, indices in sorted(grouped.items()):
            self._write_layer(self._schemas[model], [features[i] for i in indices], geometries[indices])

    def _write_layer(
        self, schema: LayerSchema, items: list[dict[str, Any]], geometries: np.ndarray[Any, Any]
    ) -> None:
        done, cap = 0, len(items)
        while done < len(items):
            path = self._parts[-1]
            size = path.stat().st_size if path.exists() else 0
            n = min(len(items) - done, cap)
            if self._count:
                fit = int((self._limit - size) / (size / self._count * 1.25))
                if fit < 1:
                    self._next_part()
                    cap = len(items)
                    continue
                n = min(n, fit)
            else:
                n = min(n, self.PROBE)
            last = _last_fid(path, schema.name) if path.exists() else None
            self._append(path, schema, items[done : done + n], geometries[done : done + n])
            if path.stat().st_size > self._limit and (self._count or n > 1):
                if not self._count:
                    path.unlink()  # the part held only this write
                else:
                    _take_back(path, schema.name, last)
                if n > 1:
                    cap = max(1, n // 2)
                else:  # one feature does not fit any more: the next part (written in full-size batches)
                    self._next_part()
                    cap = len(items)
                continue
            self._count += n
            done += n

    def _append(
        self,
        path: Path,
        schema: LayerSchema,
        features: list[dict[str, Any]],
        geometries: np.ndarray[Any, Any],
    ) -> None:
        from pyogrio.raw import write

        if schema.geometry_type != "Unknown":
            geometries = as_multi(geometries)
        columns: list[list[Any]] = []
        for name, _ in schema.fields:
            if name in BASE_FIELDS:
                columns.append([f["properties"][name] for f in features])
            else:
                columns.append([f["properties"]["properties"].get(name) for f in features])
        typed = [_array(values, kind) for values, (_, kind) in zip(columns, schema.fields, strict=True)]
        existed = path.exists()
        write(
            str(path),
            np.array(shapely.to_wkb(geometries), dtype=object),
            [array for array, _ in typed],
            field_mask=[mask for _, mask in typed],
            fields=[name for name, _ in schema.fields],
            geometry_type=schema.geometry_type,
            crs=f"EPSG:{self._crs}",
            layer=schema.name,
            driver="GPKG",
            append=existed,
            # GeoPackage 1.2: read without warnings by GDAL/QGIS releases still in service (1.4 is not).
            dataset_options={} if existed else {"VERSION": "1.2"},
        )

    def close(self) -> list[Path]:
        """The files: ``<stem>.gpkg``, or ``<stem>_partNN.gpkg`` when there are several."""
        parts = [p for p in self._parts if p.exists()]
        if len(parts) == 1:
            return [parts[0].rename(self._workdir / f"{self._stem}.gpkg")]
        return [
            p.rename(self._workdir / f"{self._stem}_part{n:02d}.gpkg") for n, p in enumerate(parts, start=1)
        ]


def _last_fid(path: Path, table: str) -> int | None:
    """The layer's last row id, or None when the part has no such layer yet."""
    with closing(sqlite3.connect(path)) as db:
        if not db.execute("SELECT 1 FROM gpkg_contents WHERE table_name = ?", (table,)).fetchone():
            return None
        return int(db.execute(f'SELECT coalesce(max(fid), 0) FROM "{table}"').fetchone()[0])


def _take_back(path: Path, table: str, last: int | None) -> None:
    """Undo the last append to ``table``: delete its rows (the R-tree follows by its triggers) or, if it
    created the layer, drop the layer; then vacuum so the file shrinks back."""
    with closing(sqlite3.connect(path)) as db:
        if last is None:
            db.execute(f'DROP TABLE IF EXISTS "rtree_{table}_geom"')
            db.execute(f'DROP TABLE "{table}"')
            for registry in (
                "gpkg_contents",
                "gpkg_geometry_columns",
                "gpkg_extensions",
                "gpkg_ogr_contents",
            ):
                if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (registry,)).fetchone():
                    db.execute(f"DELETE FROM {registry} WHERE table_name = ?", (table,))
        else:
            db.execute(f'DELETE FROM "{table}" WHERE fid > ?', (last,))
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_ogr_contents'").fetchone():
                db.execute(
                    f'UPDATE gpkg_ogr_contents SET feature_count = (SELECT count(*) FROM "{table}") '
                    "WHERE table_name = ?",
                    (table,),
                )
        db.commit()
        db.execute("VACUUM")


def as_multi(geometries: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Points, lines and polygons as one-part Multi* (a layer has one type), vectorised per type."""
    out = np.array(geometries, dtype=object)
    kinds = shapely.get_type_id(out)
    for single, make in ((0, shapely.multipoints), (1, shapely.multilinestrings), (3, shapely.multipolygons)):
        chosen = kinds == single
        if chosen.any():
            out[chosen] = make(out[chosen], indices=np.arange(int(chosen.sum())))
    return out


def shapes(geojson: list[dict[str, Any]]) -> np.ndarray[Any, Any]:
    """GeoJSON geometries as shapely ones; points (most of a big export, often) made in one call."""
    out = np.empty(len(geojson), dtype=object)
    flat = [i for i, g in enumerate(geojson) if g["type"] == "Point" and len(g["coordinates"]) == 2]
    if flat:
        out[flat] = shapely.points(np.array([geojson[i]["coordinates"] for i in flat], dtype=float))
    if len(flat) < len(geojson):
        taken = set(flat)
        for i, g in enumerate(geojson):
            if i not in taken:
                out[i] = shape(g)
    return out


@lru_cache(maxsize=8)
def _transformer(crs: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", f"EPSG:{crs}", always_xy=True)


def project(features: list[dict[str, Any]], crs: str) -> np.ndarray[Any, Any]:
    """The features' geometries (GeoJSON, EPSG:4326) as shapely geometries in ``crs``, with PROJ (pyproj,
    longitude first), a chunk at a time. Not rasterio's GDAL: the VECTOR Package function carries pyogrio's
    GDAL only (two GDAL copies would not fit a Lambda)."""
    geometries = shapes([f["geometry"] for f in features])
    if crs == "4326" or not features:
        return geometries
    transformer = _transformer(crs)

    def move(coords: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.column_stack(transformer.transform(*coords.T))

    with_z = shapely.has_z(geometries)
    moved = np.empty(len(geometries), dtype=object)
    moved[~with_z] = shapely.transform(geometries[~with_z], move)
    if with_z.any():
        moved[with_z] = shapely.transform(geometries[with_z], move, include_z=True)
    return moved


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
    if plan.records.get("files") is True and plan.selection is not None:  # what ``files`` copied
        details["copiedFiles"] = {"count": plan.selection.fileCount, "bytes": plan.selection.fileBytes}
    if plan.changes is not None:  # incremental: the window, and what was deleted in it
        details["incremental"] = {**plan.changes, "changed": sum(counts.values())}
    return details
