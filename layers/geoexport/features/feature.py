"""Features (seed 004): GeoJSON with a provider ``id``, a ``model``, an ``entityType`` and optional ``files``.

Each feature gets a URN ``URN:FEATURE:<entityType>:<tenant>:<uuid>:V<n>``; every patch makes a new version
and keeps the previous ones readable. Geometry is checked in pure Python (the API stays free of numpy).
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    computed_field,
    field_validator,
    model_validator,
)

GEOMETRY_DEPTH = {
    "Point": 0,
    "MultiPoint": 1,
    "LineString": 1,
    "MultiLineString": 2,
    "Polygon": 2,
    "MultiPolygon": 3,
}


class EntityType(StrEnum):
    COLLECTION = "COLLECTION"
    DATA = "DATA"
    DATASET = "DATASET"


class DataType(StrEnum):
    RAWDATA = "RAWDATA"
    QUICKLOOK_SD = "QUICKLOOK_SD"
    QUICKLOOK_MD = "QUICKLOOK_MD"
    QUICKLOOK_HD = "QUICKLOOK_HD"
    DOCUMENT = "DOCUMENT"
    THUMBNAIL = "THUMBNAIL"
    DESCRIPTION = "DESCRIPTION"


class FileLocation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    storage: str | None = None
    url: str = Field(min_length=1, max_length=2048)


_DIGEST_LENGTH = {"MD5": 32, "SHA-256": 64}


class FileAttributes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataType: DataType
    mimeType: str = Field(  # type/subtype with optional parameters, nothing after (no header injection)
        min_length=1,
        max_length=200,
        pattern=r'^[\w.+-]+/[\w.+-]+(?:[ \t]*;[ \t]*[\w.+-]+=(?:[\w.+-]+|"[^"\x00-\x1f]*"))*$',
    )
    filename: str = Field(
        min_length=1,
        max_length=255,
        pattern=r"^[^/\\\x00-\x1f]+$",
        description="a plain file name: no directories",
    )
    filesize: int | None = Field(None, ge=0)
    algorithm: Literal["MD5", "SHA-256"] | None = Field(
        None, description="with checksum: the file is to be stored (uploaded to a presigned URL and verified)"
    )
    checksum: str | None = Field(None, max_length=128)

    @field_validator("filename")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if value in (".", ".."):
            raise ValueError("a plain file name: not . or ..")
        return value

    @model_validator(mode="after")
    def _checksum(self) -> FileAttributes:
        if (self.algorithm is None) != (self.checksum is None):
            raise ValueError(
                "algorithm and checksum go together (both to store the file, neither to reference)"
            )
        if self.algorithm and self.checksum:
            length = _DIGEST_LENGTH[self.algorithm]
            if len(self.checksum) != length or any(c not in "0123456789abcdefABCDEF" for c in self.checksum):
                raise ValueError(f"an {self.algorithm} checksum is {length} hexadecimal digits")
            self.checksum = self.checksum.lower()
        return self


class FeatureFile(BaseModel):
    """A file as sent: to store (``algorithm`` + ``checksum``) or to reference (``locations[].url`` only)."""

    model_config = ConfigDict(extra="forbid")
    locations: list[FileLocation] = Field(default_factory=list, max_length=20)
    attributes: FileAttributes

    @property
    def to_store(self) -> bool:
        return self.attributes.checksum is not None

    @model_validator(mode="after")
    def _reference_or_store(self) -> FeatureFile:
        if not self.to_store and not self.locations:
            raise ValueError(
                "a file needs locations[].url (a reference) or algorithm and checksum (to store)"
            )
        return self


class FileState(StrEnum):
    REFERENCED = "REFERENCED"  # kept as given
    AWAITING_UPLOAD = "AWAITING_UPLOAD"  # to store: upload it to the presigned URL of the answer
    STORED = "STORED"  # arrived and its checksum verified; locations[0] is its S3 URL
    ERROR = "ERROR"  # arrived but did not match (see error); upload it again


class StoredFile(FeatureFile):
    """A file as kept: what was sent plus where storage stands."""

    state: FileState = FileState.REFERENCED
    error: str | None = None
    target: str | None = Field(None, description="the S3 URL a file to store gets")


def geometry_problem(geometry: dict[str, Any]) -> str | None:
    """Why ``geometry`` is not a GeoJSON geometry in lon/lat (None when it is)."""
    kind = geometry.get("type")
    if kind == "GeometryCollection":
        parts = geometry.get("geometries")
        if not isinstance(parts, list):
            return "a GeometryCollection needs a list of geometries"
        for index, part in enumerate(parts):
            problem = geometry_problem(part) if isinstance(part, dict) else "not an object"
            if problem:
                return f"geometries[{index}]: {problem}"
        return None
    if kind not in GEOMETRY_DEPTH:
        return f"unknown geometry type {kind!r}"

    def check(value: Any, depth: int, where: str) -> str | None:
        if depth == 0:
            ok = isinstance(value, list) and len(value) in (2, 3)
            ok = ok and all(isinstance(v, int | float) and math.isfinite(v) for v in value)
            if not ok:
                return f"{where} is not a position [lon, lat]"
            # Natural Earth itself has 180.00000000000006: float noise at the limits is not an error.
            if not (-180 - 1e-9 <= value[0] <= 180 + 1e-9 and -90 - 1e-9 <= value[1] <= 90 + 1e-9):
                return f"{where} ({value[0]}, {value[1]}) is off the globe"
            return None
        if not isinstance(value, list) or not value:
            return f"{where} must be a non-empty list"
        for index, item in enumerate(value):
            problem = check(item, depth - 1, f"{where}[{index}]")
            if problem:
                return problem
        return None

    problem = check(geometry.get("coordinates"), GEOMETRY_DEPTH[str(kind)], "coordinates")
    if problem:
        return problem
    rings = []
    if kind == "Polygon":
        rings = geometry["coordinates"]
    elif kind == "MultiPolygon":
        rings = [ring for polygon in geometry["coordinates"] for ring in polygon]
    for ring in rings:
        if len(ring) < 4 or ring[0] != ring[-1]:
            return "each polygon ring needs 4 or more positions, the last equal to the first"
    if kind == "LineString" and len(geometry["coordinates"]) < 2:
        return "a LineString needs 2 or more positions"
    return None


class FeatureIn(BaseModel):
    """One feature of ``POST /features``."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=256, description="the provider's id")
    type: Literal["Feature"]
    model: str = Field(min_length=1, max_length=64)
    entityType: EntityType
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    files: list[FeatureFile] = Field(default_factory=list, max_length=50)

    @field_validator("geometry")
    @classmethod
    def _geometry(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and (problem := geometry_problem(value)):
            raise ValueError(problem)
        return value


class FeatureCollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["FeatureCollection"]
    features: list[FeatureIn] = Field(min_length=1, max_length=100)

    def __repr__(self) -> str:
        """Short: powertools logs a route's arguments at debug level with an f-string, so this ran for every
        batch whatever the log level (~3% of a 100-feature batch's CPU writing every coordinate)."""
        return f"FeatureCollectionIn({len(self.features)} features)"


class Feature(BaseModel):
    """A stored feature version, as answered."""

    id: str
    urn: str
    type: Literal["Feature"] = "Feature"
    model: str
    entityType: EntityType
    geometry: dict[str, Any] | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    files: list[StoredFile] = Field(default_factory=list)
    version: int
    createdAt: datetime
    updatedAt: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def filesState(self) -> Literal["NONE", "COMPLETE", "AWAITING_UPLOAD", "ERROR"]:
        """ERROR when any file to store did not match its checksum, else AWAITING_UPLOAD while any is due."""
        states = {f.state for f in self.files}
        if FileState.ERROR in states:
            return "ERROR"
        if FileState.AWAITING_UPLOAD in states:
            return "AWAITING_UPLOAD"
        return "COMPLETE" if self.files else "NONE"


class Upload(BaseModel):
    """Where to PUT a file to store, with which headers, until ``expiresAt``
    (``curl -T file -H 'x-amz-checksum-sha256: ...' '<url>'``)."""

    file: int = Field(description="index in files")
    filename: str
    method: Literal["PUT"] = "PUT"
    url: str
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Send these with the PUT: the declared checksum (and size) are signed into the URL, "
        "so the store refuses any other bytes",
    )
    expiresAt: datetime


class FeatureAnswer(Feature):
    """A created or patched feature, with an upload URL per file still to store."""

    uploads: list[Upload] = Field(default_factory=list)


class FeatureResult(BaseModel):
    """One feature's outcome in a batch create."""

    id: str
    status: int
    urn: str | None = None
    errors: list[dict[str, str]] = Field(default_factory=list)
    uploads: list[Upload] = Field(default_factory=list)


class BatchAnswer(BaseModel):
    items: list[FeatureResult]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FeaturePage(BaseModel):
    items: list[Feature]
    nextToken: str | None = None


_NUM = r"-?[0-9]+(?:\.[0-9]+)?"
BBOX = rf"^{_NUM},{_NUM},{_NUM},{_NUM}$"


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``minLon,minLat,maxLon,maxLat`` in EPSG:4326; InvalidRequest naming ``bbox`` otherwise."""
    from geoexport.errors import FieldProblem, InvalidRequest

    x0, y0, x1, y1 = (float(v) for v in text.split(","))
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InvalidRequest(
            "bbox is not a box on the globe",
            [
                FieldProblem(
                    "bbox", "expected minLon,minLat,maxLon,maxLat with min <= max, within -180..180/-90..90"
                )
            ],
        )
    return x0, y0, x1, y1


def _body_type(value: Any) -> str | None:
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


#: ``POST /features`` takes one Feature or a FeatureCollection (told apart by ``type``).
FeatureBody = Annotated[
    Annotated[FeatureIn, Tag("Feature")] | Annotated[FeatureCollectionIn, Tag("FeatureCollection")],
    Discriminator(_body_type),
]
