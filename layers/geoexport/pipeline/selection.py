"""A VECTOR export's selected features in scratch, in chunks, and what was learnt about them on the way.

Clip reads the feature index page by page and appends what it clipped to newline-delimited GeoJSON chunks
(``scratch/<task>/features/00000.jsonl``...), saving a cursor after each chunk: an invocation that nears
its time budget ends and the state machine calls Clip again, which resumes at the cursor (a retry rewrites
the same chunk key). Package reads the chunks one at a time. Neither step holds every feature, so memory
does not grow with the export; what a writer must know before its first row (each model's columns and
their types, geometry dimensions, the columns CSV leaves out because they are empty, counts and extent)
is gathered here as the chunks are written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel


class Kind(StrEnum):
    """A column's type in every file (GeoPackage field types): the narrowest that holds every value."""

    BOOL = "bool"
    INT = "int"
    REAL = "real"
    TEXT = "text"  # strings; objects and lists as JSON text


def kind_of(value: Any) -> Kind | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return Kind.BOOL
    if isinstance(value, int):
        return Kind.INT if -(2**63) <= value < 2**63 else Kind.TEXT  # a GeoPackage integer is 64-bit
    if isinstance(value, float):
        return Kind.REAL
    return Kind.TEXT


def merge_kinds(a: Kind | None, b: Kind | None) -> Kind | None:
    """Integers and reals make reals; booleans with numbers, or anything with text, make text."""
    if a is None or a == b:
        return b
    if b is None:
        return a
    if {a, b} == {Kind.INT, Kind.REAL}:
        return Kind.REAL
    return Kind.TEXT


class LayerStats(BaseModel):
    """One model's features: how many, their geometries' dimensions, and their properties' kinds."""

    count: int = 0
    dimensions: list[int] = []
    collections: bool = False  # a GeometryCollection among them: the layer's type is "Unknown"
    columns: dict[str, Kind | None] = {}  # property -> kind (None: null wherever present)


class Selection(BaseModel):
    """The cursor of an export's selection (saved after every chunk) and, once ``done``, its summary."""

    token: str | None = None  # where the next page of the index starts
    done: bool = False
    invocations: int = 0
    chunks: list[str] = []
    count: int = 0
    bounds: list[float] | None = None  # of the clipped geometries, EPSG:4326
    layers: dict[str, LayerStats] = {}  # model -> stats
    filled: list[str] = []  # properties with a non-empty value in some feature (CSV's empty_columns)
    fileCount: int = 0  # ``files``: the stored files Package will copy, and their bytes
    fileBytes: int = 0
    deleted: list[dict[str, Any]] | None = None  # incremental exports: what went in the window

    def add(self, features: list[dict[str, Any]], geometries: list[Any]) -> None:
        """Count ``features`` (exported GeoJSON, see :func:`geoexport.pipeline.vector.exported`) in, with
        ``geometries``: theirs as the shapely geometries Clip made (not parsed again)."""
        import shapely

        dimensions = shapely.get_dimensions(geometries)
        collections = shapely.get_type_id(geometries) == shapely.GeometryType.GEOMETRYCOLLECTION
        filled = set(self.filled)
        for feature, dimension, collection in zip(features, dimensions, collections, strict=True):
            base = feature["properties"]
            layer = self.layers.setdefault(str(base["model"]), LayerStats())
            layer.count += 1
            if int(dimension) not in layer.dimensions:
                layer.dimensions = sorted([*layer.dimensions, int(dimension)])
            layer.collections |= bool(collection)
            for entry in feature.get("files") or []:
                self.fileCount += 1
                self.fileBytes += int(entry.get("filesize") or 0)
            for name, value in base["properties"].items():
                layer.columns[name] = merge_kinds(layer.columns.get(name), kind_of(value))
                if value is not None and value != "":
                    filled.add(name)
        self.filled = sorted(filled)
        self.count += len(features)
        if features:
            bounds = [float(v) for v in shapely.total_bounds(geometries)]
            old = self.bounds or bounds
            self.bounds = [min(old[0], bounds[0]), min(old[1], bounds[1]), max(old[2], bounds[2]),
                           max(old[3], bounds[3])]  # fmt: skip


class ChunkReader(Protocol):
    def get_bytes(self, key: str) -> bytes: ...


class ChunkStore(ChunkReader, Protocol):
    def put_bytes(self, key: str, body: bytes, content_type: str) -> None: ...


def encode_chunk(features: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(f, separators=(",", ":")) + "\n" for f in features).encode()


def read_chunks(store: ChunkReader, keys: list[str]) -> Iterator[list[dict[str, Any]]]:
    """Each chunk's features in turn (one chunk in memory at a time)."""
    for key in keys:
        yield [json.loads(line) for line in store.get_bytes(key).splitlines() if line]
