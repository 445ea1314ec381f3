"""Request preparation: every default filled in, the AoI normalised, and everything that cannot be served
refused (with every problem listed) before anything is stored or started."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from geoexport.errors import FieldProblem, InvalidRequest, UnprocessableRequest
from geoexport.features.cql2 import parse_filter
from geoexport.geometry import aoi, planar
from geoexport.models.catalog import CatalogRecord
from geoexport.models.geojson import RoiFeatureCollection
from geoexport.models.tasks import CreateExportTaskRequest, Domain, ExportFormat, OnExpiry, Packer
from geoexport.notify import ssrf
from geoexport.pipeline.items import FanOut
from geoexport.tasks.estimate import Estimate
from geoexport.tasks.ports import Catalog, Geometry


@dataclass(frozen=True)
class Limits:
    download_url_ttl_seconds: int
    retention_days: int
    storage_quota_bytes: int
    max_roi_vertices: int = 10_000
    max_export_tiles: int = 2_000_000
    max_export_bytes: int = 9 * 1024**3  # what the Package function's 10 GiB of scratch holds, with headroom
    allow_loopback_webhooks: bool = False  # local development only (WEBHOOK_ALLOW_LOOPBACK)
    client_storage_quota_bytes: int = 20 * 1024**3  # per client, unless its record sets its own
    client_max_concurrent_exports: int = 10  # per client, unless its record sets its own
    max_lifetime_days: int = 90  # cache hits extend an export's expiry up to this long after it finished
    fanout: FanOut = field(
        default_factory=FanOut
    )  # when big GeoPackages fan out, and how (the estimate counts the work items)
    #: The longest render one invocation may be estimated at (Lambda stops at 900 s; estimates are rough).
    max_invocation_seconds: float = 600.0


class Prepared(NamedTuple):
    request: CreateExportTaskRequest  # every default filled in, the AoI normalised
    record: CatalogRecord | None  # None for VECTOR: the feature repository is the source
    notes: list[str]  # what was repaired or chosen for the user (kept on the task)


def check_webhooks(request: CreateExportTaskRequest, allow_loopback: bool) -> None:
    """Credentials in a webhook URL and literal non-public addresses are refused when registered (host
    names are checked again at every connection: what they resolve to may change)."""
    problems = []
    for index, hook in enumerate(request.webhooks):
        try:
            ssrf.check_registered(str(hook.url), allow_loopback)
        except ssrf.BlockedDestination as refused:
            problems.append(FieldProblem(f"webhooks[{index}].url", str(refused)))
    if problems:
        raise UnprocessableRequest("a webhook cannot be registered", problems)


def check_antimeridian(roi: RoiFeatureCollection) -> None:
    """A ring drawn across +-180 is refused with how to split it: never export the other side of the world
    without a word."""
    problems = [
        FieldProblem(f"ROI.features[{index}].geometry", problem)
        for index, feature in enumerate(roi.features)
        if (problem := planar.antimeridian_crossing(feature.geometry_mapping()))
    ]
    if problems:
        raise UnprocessableRequest("the ROI crosses the antimeridian", problems)


def packing_problems(request: CreateExportTaskRequest) -> list[FieldProblem]:
    if request.maxPartSize is not None and request.packer is not Packer.ZIP:
        return [FieldProblem("maxPartSize", "only the zip packer splits into parts")]
    return []


def with_defaults(
    request: CreateExportTaskRequest, record: CatalogRecord, national_crs: str | None = None
) -> CreateExportTaskRequest:
    """Fill in what the request leaves open, so the stored request says exactly what is exported.

    No ROI: the record's whole footprint (CLC+'s get_product_europe). A feature without maxResolutionDeg:
    the request's top-level one, else the record's own resolution. A national product in GTiff without
    an explicit artifactCRS: the country's national projection.
    """
    update: dict[str, Any] = {}
    if request.ROI is None:
        collection = RoiFeatureCollection.model_validate(
            {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": record.footprint}]}
        )
    else:
        collection = request.roi_collection()
    fallback = request.maxResolutionDeg or record.maxResolutionDeg
    features = [
        f
        if f.properties.maxResolutionDeg is not None
        else f.model_copy(
            update={"properties": f.properties.model_copy(update={"maxResolutionDeg": fallback})}
        )
        for f in collection.features
    ]
    update["ROI"] = collection.model_copy(update={"features": features})
    crs = request.artifactCRS.removeprefix("EPSG:")
    if (
        national_crs
        and request.format is ExportFormat.GTIFF
        and "artifactCRS" not in request.model_fields_set
    ):
        crs = national_crs
    update["artifactCRS"] = crs
    return request.model_copy(update=update)


def check_output(request: CreateExportTaskRequest, crs_problem: Callable[[str], str | None]) -> None:
    """Format, CRS and packer must fit together; every problem is listed."""
    problems: list[FieldProblem] = []
    if request.format is ExportFormat.GPKG and request.artifactCRS != "4326":
        problems.append(
            FieldProblem(
                "artifactCRS",
                f"GPKG exports are tiled in WorldCRS84Quad (EPSG:4326); use format GTiff for "
                f"EPSG:{request.artifactCRS}",
            )
        )
    elif request.artifactCRS != "4326" and (problem := crs_problem(request.artifactCRS)):
        problems.append(FieldProblem("artifactCRS", problem))
    problems += packing_problems(request)
    if problems:
        raise UnprocessableRequest("the requested output cannot be made", problems)


WORLD = {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}


def changed_time(value: Any) -> datetime | None:
    """``parameters.changedSince``/``changedUntil`` of an incremental VECTOR export (None: not a time)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def vector_defaults(
    request: CreateExportTaskRequest,
    crs_problem: Callable[[str], str | None],
    national_crs: str | None = None,
) -> CreateExportTaskRequest:
    """A VECTOR export: the caller's features (optionally of one model / entity type, passing a CQL2
    ``filter``) in the AoI (default:
    the whole globe), as GeoPackage vector layers in any EPSG code (a country AoI without an explicit
    artifactCRS: the national projection)."""
    problems: list[FieldProblem] = []
    if request.catalogRecordID is not None:
        problems.append(FieldProblem("catalogRecordID", "not used for domain VECTOR (it exports features)"))
    if request.format is not ExportFormat.GPKG:
        problems.append(FieldProblem("format", "VECTOR exports are GeoPackages (GPKG)"))
    model = request.parameters.get("model")
    if model is not None and not (isinstance(model, str) and 0 < len(model) <= 64):
        problems.append(FieldProblem("parameters.model", "a model name"))
    entity = request.parameters.get("entityType")
    if entity is not None and entity not in ("COLLECTION", "DATA", "DATASET"):
        problems.append(FieldProblem("parameters.entityType", "one of COLLECTION, DATA, DATASET"))
    problems += record_problems(request)
    where = request.parameters.get("filter")
    if where is not None and not (isinstance(where, str) and where.strip()):
        problems.append(FieldProblem("parameters.filter", "CQL2 text, e.g. depth > 10 AND kind = 'reef'"))
    elif where is not None:
        parse_filter(where, "parameters.filter")  # a 400 saying where the text cannot be read
    for name in ("changedSince", "changedUntil"):
        if name in request.parameters and changed_time(request.parameters[name]) is None:
            problems.append(FieldProblem(f"parameters.{name}", "an ISO 8601 time with its UTC offset"))
    crs = request.artifactCRS.removeprefix("EPSG:")
    if national_crs and "artifactCRS" not in request.model_fields_set:
        crs = national_crs
    if crs != "4326" and (problem := crs_problem(crs)):
        problems.append(FieldProblem("artifactCRS", problem))
    problems += packing_problems(request)
    if problems:
        raise UnprocessableRequest("the VECTOR export cannot be made as asked", problems)
    roi = request.ROI
    if roi is None:
        roi = RoiFeatureCollection.model_validate(
            {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": WORLD}]}
        )
    return request.model_copy(update={"ROI": roi, "artifactCRS": crs})


def record_problems(request: CreateExportTaskRequest) -> list[FieldProblem]:
    """``formats``, ``fields``, ``csv`` and ``one_file_per_object`` of a VECTOR export (what files it
    writes), each problem under its parameter's path."""
    from pydantic import ValidationError

    from geoexport.api.http import problems_from_pydantic
    from geoexport.packaging.records import RecordOptions

    try:
        options = RecordOptions.model_validate(request.parameters)
    except ValidationError as error:
        # A problem of the options as a whole (clashing column names) is about ``fields``.
        return [
            FieldProblem(f"parameters.{p.field}" if p.field != "body" else "parameters.fields", p.reason)
            for p in problems_from_pydantic(error.errors())
        ]
    problems = [
        FieldProblem(f"parameters.{name}", "needs a packer (zip, tar.gz or tar.bz2): the files go in folders")
        for name in ("one_file_per_object", "files")
        if getattr(options, name) and request.packer is Packer.NONE
    ]
    if (options.flat or options.filename_template) and not options.files:
        problems.append(FieldProblem("parameters.files", "flat and filename_template are about files: true"))
    return problems


def check_against_record(request: CreateExportTaskRequest, record: CatalogRecord) -> None:
    """Refuse, before anything starts, an ROI the record cannot serve; every problem is listed."""
    problems: list[FieldProblem] = []
    for index, feature in enumerate(request.roi_features()):
        where = f"ROI.features[{index}]"
        if not planar.geometries_intersect(feature.geometry_mapping(), record.footprint):
            problems.append(
                FieldProblem(
                    f"{where}.geometry",
                    f"does not intersect the footprint of record {record.id} ({record.name})",
                )
            )
        wanted = feature.properties.resolution
        if wanted < record.maxResolutionDeg * (1 - 1e-9):
            problems.append(
                FieldProblem(
                    f"{where}.properties.maxResolutionDeg",
                    f"{wanted} is finer than the source allows; the finest is {record.maxResolutionDeg}",
                )
            )
        low = feature.properties.minResolutionDeg
        if low is not None and low < wanted:
            problems.append(
                FieldProblem(
                    f"{where}.properties.minResolutionDeg", "must not be finer than maxResolutionDeg"
                )
            )
    if problems:
        raise UnprocessableRequest("the ROI cannot be exported from this record", problems)


def bounded(result: Estimate, limits: Limits, request: CreateExportTaskRequest | None = None) -> Estimate:
    """One export may not exceed what the pipeline can finish (refused before anything starts): the tiles,
    the bytes one Package (or Merge) invocation's scratch holds (twice the export when a zip copy or a COG's
    staging file sits beside it), and for a GeoTIFF, which renders in one invocation, its estimated time (a
    GeoPackage's invocations are bounded by FanOutTiles and FanOutItemTiles instead)."""
    problems = []
    if result.tiles > limits.max_export_tiles:
        problems.append(FieldProblem("ROI", f"{result.tiles} tiles (limit {limits.max_export_tiles})"))
    doubled = request is not None and (request.packer is Packer.ZIP or request.format is ExportFormat.GTIFF)
    if result.bytes * (2 if doubled else 1) > limits.max_export_bytes:
        copy = " (twice that while it is zipped or staged as a COG)" if doubled else ""
        problems.append(
            FieldProblem(
                "ROI", f"about {result.bytes} bytes{copy} (limit {limits.max_export_bytes} of scratch)"
            )
        )
    tiff = request is not None and request.format is ExportFormat.GTIFF
    if tiff and result.renderSeconds > limits.max_invocation_seconds:
        problems.append(
            FieldProblem(
                "ROI",
                f"a GeoTIFF renders in one invocation, estimated at {result.renderSeconds:.0f} s here (limit "
                f"{limits.max_invocation_seconds:.0f} s); choose GPKG (split into work items), a smaller ROI "
                "or a coarser resolution",
            )
        )
    if problems:
        raise UnprocessableRequest(
            "the export is larger than one export may be: use a smaller ROI or a coarser resolution",
            problems,
        )
    return result


def prepare(
    request: CreateExportTaskRequest, catalog: Catalog, geometry: Geometry, limits: Limits
) -> Prepared:
    """The request as it will be stored, its record, and notes; or the 4xx saying what is wrong."""
    if request.domain is Domain.THREE_D:  # seed 001 names it; nothing here renders 3D tiles or meshes
        raise UnprocessableRequest(
            "3D exports are not supported",
            [FieldProblem("domain", "3D is not supported; supported domains: RASTER, DEM, VECTOR")],
        )
    on_expiry = request.parameters.get("onExpiry")
    if on_expiry is not None and on_expiry not in {choice.value for choice in OnExpiry}:
        raise InvalidRequest(
            "parameters.onExpiry says what happens at expiredAt",
            [FieldProblem("parameters.onExpiry", "one of: delete (the default), archive")],
        )
    check_webhooks(request, limits.allow_loopback_webhooks)
    notes: list[str] = []
    national: str | None = None
    if request.ROI is not None:
        normalised = aoi.normalise(request.ROI, geometry.repair, max_vertices=limits.max_roi_vertices)
        aoi.check_vertices(normalised.roi, limits.max_roi_vertices)  # a repair may have added some
        check_antimeridian(normalised.roi)
        request = request.model_copy(update={"ROI": normalised.roi})
        notes, national = normalised.notes, normalised.national_crs
    if request.domain is Domain.VECTOR:
        return Prepared(vector_defaults(request, geometry.crs_problem, national), None, notes)
    if request.catalogRecordID is None:
        raise InvalidRequest(
            f"a {request.domain.value} export names its catalog record",
            [FieldProblem("catalogRecordID", f"required for domain {request.domain.value}")],
        )
    record = catalog.get(request.catalogRecordID)
    if record.domain != request.domain.value:
        raise UnprocessableRequest(
            f"record {record.id} ({record.name}) is a {record.domain} record",
            [
                FieldProblem(
                    "domain", f"must be {record.domain} for this record (it is {request.domain.value})"
                )
            ],
        )
    request = with_defaults(request, record, national)
    check_against_record(request, record)
    check_output(request, geometry.crs_problem)
    return Prepared(request, record, notes)
