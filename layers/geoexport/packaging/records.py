"""VECTOR exports as records (seed 002's object exports): GeoJSON, newline-delimited GeoJSON, CSV, JSON and
XML (with its XSD), beside or instead of the GeoPackage.

Every record has the feature's identity (``urn``, ``featureId``, ``model``, ``entityType``, ``version``),
then its properties (all of them, or the ``fields`` asked for, in that order, each optionally renamed by
its ``display_name``; the GeoPackage's columns too), then its geometry: WKT in the export's CRS for CSV
and XML, a GeoJSON geometry in the export's CRS for JSON; GeoJSON files are always EPSG:4326 (RFC 7946
allows no other CRS).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from shapely.geometry import mapping, shape

IDENTITY = ("urn", "featureId", "model", "entityType", "version")
FILES_COLUMN = "files"  # with ``files``: each record's copied files, relative to the export's root
XML_NAMESPACE = "https://geoexport.dev/schema/features/1.0"
XSD_NAME = "features.xsd"


class RecordFormat(StrEnum):
    GPKG = "GPKG"  # one layer per model (the default)
    GEOJSON = "GeoJSON"  # one FeatureCollection (RFC 7946)
    GEOJSONSEQ = "GeoJSONSeq"  # one Feature per line (RFC 8142 without the record separator), for big exports
    CSV = "CSV"
    JSON = "JSON"
    XML = "XML"


class FieldExport(BaseModel):
    """easydb's field export attributes: ``display_name`` renames the property in every file."""

    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(None, min_length=1, max_length=128)


class CsvOptions(BaseModel):
    """easydb's CSV export attributes. A header always comes first; values are always quoted."""

    model_config = ConfigDict(extra="forbid")
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str = Field('"', min_length=1, max_length=1)
    escape: str = Field('"', min_length=1, max_length=1, description="escapes the quote inside values")
    use_bom: bool = False
    empty_columns: bool = Field(False, description="false: a column empty in every record is left out")

    @field_validator("delimiter", "quote", "escape")
    @classmethod
    def _printable(cls, value: str) -> str:
        if value in "\r\n":
            raise ValueError("a line break cannot separate, quote or escape")
        return value


class RecordOptions(BaseModel):
    """What a VECTOR export's ``parameters`` say about its files (the others select the features)."""

    model_config = ConfigDict(extra="ignore")
    formats: list[RecordFormat] = Field(default_factory=lambda: [RecordFormat.GPKG], min_length=1)
    fields: dict[str, FieldExport] | None = None
    csv: CsvOptions | None = None
    one_file_per_object: bool = False
    files: bool = Field(False, description="copy each feature's stored files into the export")
    flat: bool = Field(False, description="files/<name> instead of files/<featureId>/<name>")
    filename_template: str | None = Field(
        None, min_length=1, max_length=200, description="e.g. {featureId}_{dataType}{ext}"
    )

    @field_validator("filename_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        """Plain ``{name}`` placeholders only (no attribute access, indexing, conversions or formats)."""
        if value is None:
            return value
        import string

        try:
            for _, name, spec, conversion in string.Formatter().parse(value):
                if name is not None and (
                    not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or spec or conversion
                ):
                    raise ValueError(f"{{{name}}}: placeholders are plain names, e.g. {{featureId}}")
        except ValueError as error:
            raise ValueError(f"not a file name template: {error}") from None
        return value

    @field_validator("formats")
    @classmethod
    def _unique(cls, value: list[RecordFormat]) -> list[RecordFormat]:
        return list(dict.fromkeys(value))

    @field_validator("fields", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        """A list of names is the same as a map with no renames."""
        return {name: {} for name in value} if isinstance(value, list) else value

    @model_validator(mode="after")
    def _distinct_columns(self) -> RecordOptions:
        """Every exported column has its own name (a rename may not hide another column)."""
        if self.fields is not None:
            shown = [spec.display_name or name for name, spec in self.fields.items()]
            reserved = {*IDENTITY, "WKT", *([FILES_COLUMN] if self.files else [])}
            clashes = sorted({n for n in shown if shown.count(n) > 1} | (set(shown) & reserved))
            if clashes:
                raise ValueError(f"column names must be distinct and not {sorted(reserved)}: {clashes}")
        return self

    def shape(self, features: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The features with only the asked properties, renamed, in the asked order (every file then
        writes them as they are). Without ``fields``: all properties, unchanged."""
        if self.fields is None:
            return features
        chosen = [(name, spec.display_name or name) for name, spec in self.fields.items()]
        shaped = []
        for feature in features:
            props = feature["properties"]["properties"]
            kept = {shown: props.get(name) for name, shown in chosen}
            shaped.append({**feature, "properties": {**feature["properties"], "properties": kept}})
        return shaped

    def columns(self, features: Iterable[dict[str, Any]]) -> list[str]:
        """The property columns of (shaped) features (see :meth:`columns_of`)."""
        return self.columns_of({k for f in features for k in f["properties"]["properties"]})

    def columns_of(self, names: Iterable[str]) -> list[str]:
        """The property columns given every (unshaped) property name: the asked order, else every name
        sorted; then the relative paths of the copied files (``files``)."""
        if self.fields is not None:
            shown = [spec.display_name or name for name, spec in self.fields.items()]
        else:
            shown = sorted(set(names))
            shown = [name for name in shown if name != FILES_COLUMN] if self.files else shown
        return [*shown, FILES_COLUMN] if self.files else shown

    def shown(self) -> list[tuple[str, str]] | None:
        """The asked ``fields`` as (property, column name), in order; None when all are exported."""
        if self.fields is None:
            return None
        return [(name, spec.display_name or name) for name, spec in self.fields.items()]


def _text(value: Any) -> str:
    """A value as a CSV or XML cell: null -> empty, objects and lists as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if math.isfinite(value) else json.dumps(value)  # as JSON writes numbers
    return json.dumps(value, ensure_ascii=False)


def records(features: list[dict[str, Any]], columns: list[str]) -> Iterator[dict[str, Any]]:
    """Each (shaped) feature as its record: identity, then the property columns (geometry apart)."""
    for feature in features:
        base, props = feature["properties"], feature["properties"]["properties"]
        record = {key: base.get(key) for key in IDENTITY}
        record.update({name: props.get(name) for name in columns})
        yield record


Geometries = np.ndarray[Any, Any]  # shapely geometries in the export's CRS, one per feature


class RecordFile(Protocol):
    """A file written a chunk at a time (memory holds one chunk, never the export)."""

    def write(self, features: list[dict[str, Any]], geometries: Geometries) -> None: ...
    def close(self) -> list[Path]: ...


class GeoJsonFile:
    """One FeatureCollection, or one Feature per line (``sequence``); always EPSG:4326 (the features' own
    GeoJSON geometries: RFC 7946 allows no other CRS)."""

    def __init__(self, path: Path, columns: list[str], sequence: bool) -> None:
        self._path, self._columns, self._sequence = path, columns, sequence
        self._out = path.open("w", encoding="utf-8")
        self._first = True
        if not sequence:
            self._out.write('{"type":"FeatureCollection","features":[\n')

    def write(self, features: list[dict[str, Any]], geometries: Geometries) -> None:
        for feature, record in zip(features, records(features, self._columns), strict=True):
            item = {
                "type": "Feature",
                "id": record["urn"],
                "geometry": feature["geometry"],
                "properties": record,
            }
            text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            self._out.write(text + "\n" if self._sequence else ("" if self._first else ",") + text + "\n")
            self._first = False

    def close(self) -> list[Path]:
        if not self._sequence:
            self._out.write("]}\n")
        self._out.close()
        return [self._path]


def _wkt(geometries: Geometries) -> list[str]:
    return list(shapely.to_wkt(geometries, rounding_precision=-1))


class CsvFile:
    """A header, then a row per feature, the geometry as WKT in the last column (``WKT``: GDAL's CSV driver
    reads it as the geometry). ``filled``: the columns with a value somewhere in the export; without
    ``csv.empty_columns`` the others are left out (known before the first row: the selection counted them)."""

    def __init__(self, path: Path, options: RecordOptions, columns: list[str], filled: set[str]) -> None:
        self._path, self._columns = path, columns
        settings = options.csv or CsvOptions.model_validate({})
        header = [*IDENTITY, *columns, "WKT"]
        always = (*IDENTITY, "WKT")
        self._keep = [
            i for i, name in enumerate(header) if settings.empty_columns or name in always or name in filled
        ]
        self._out = path.open("w", encoding="utf-8-sig" if settings.use_bom else "utf-8", newline="")
        self._writer = csv.writer(
            self._out,
            delimiter=settings.delimiter,
            quotechar=settings.quote,
            escapechar=None if settings.escape == settings.quote else settings.escape,
            doublequote=settings.escape == settings.quote,
            quoting=csv.QUOTE_ALL,
            lineterminator="\r\n",
        )
        self._writer.writerow([header[i] for i in self._keep])

    def write(self, features: list[dict[str, Any]], geometries: Geometries) -> None:
        keep = self._keep
        for record, wkt in zip(records(features, self._columns), _wkt(geometries), strict=True):
            row = [_text(v) for v in record.values()] + [wkt]
            self._writer.writerow([row[i] for i in keep])

    def close(self) -> list[Path]:
        self._out.close()
        return [self._path]


class _OneOrEach:
    """One document (``target``) between a head and a tail, or one file per record in ``folder``."""

    def __init__(
        self, target: Path, options: RecordOptions, columns: list[str], folder: str, head: str
    ) -> None:
        self._target, self._columns = target, columns
        self._each = options.one_file_per_object
        self._written: list[Path] = []
        self._folder = target.parent / folder
        if self._each:
            self._folder.mkdir(exist_ok=True)
        else:
            self._out = target.open("w", encoding="utf-8")
            self._out.write(head)

    def _put(self, feature: dict[str, Any], whole: str, inline: str) -> None:
        """A record: ``whole`` as its own file, or ``inline`` appended to the one document."""
        if self._each:
            path = _one_file(self._folder, feature, f".{self._folder.name}")
            path.write_text(whole, encoding="utf-8")
            self._written.append(path)
        else:
            self._out.write(inline)

    def _close(self, tail: str) -> list[Path]:
        if self._each:
            return self._written
        self._out.write(tail)
        self._out.close()
        return [self._target]


class JsonFile(_OneOrEach):
    """One JSON array (``target``), or one file per record in a ``json`` folder beside it; each record has
    its geometry as GeoJSON in the export's CRS."""

    def __init__(self, target: Path, options: RecordOptions, columns: list[str]) -> None:
        super().__init__(target, options, columns, "json", "[")
        self._first = True

    def write(self, features: list[dict[str, Any]], geometries: Geometries) -> None:
        rows = records(features, self._columns)
        for feature, record, geometry in zip(features, rows, geometries, strict=True):
            item = {**record, "geometry": mapping(geometry)}
            whole = json.dumps(item, ensure_ascii=False, indent=1) if self._each else ""
            inline = (
                "" if self._each else ("\n" if self._first else ",\n") + json.dumps(item, ensure_ascii=False)
            )
            self._put(feature, whole, inline)
            self._first = False

    def close(self) -> list[Path]:
        return self._close("\n]\n")


def plain_name(name: str, fallback: str = "file") -> str:
    """A name usable on every file system (no directories, no control or reserved characters)."""
    cleaned = re.sub(r'[\x00-\x1f/\\:*?"<>|]+', "_", name).strip(" .")
    return cleaned[:200] or fallback


def _one_file(folder: Path, feature: dict[str, Any], suffix: str) -> Path:
    """``<folder>/<featureId><suffix>``; features of two models may share an id: ``-2``, ``-3``..."""
    stem = plain_name(str(feature["properties"]["featureId"]), "feature")
    path, number = folder / f"{stem}{suffix}", 1
    while path.exists():
        number += 1
        path = folder / f"{stem}-{number}{suffix}"
    return path


XSD = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- geoexport VECTOR exports as XML: features, each with its identity as attributes, its properties (name as
     exported, value as text; objects and lists as JSON) and its geometry as WKT in the export's CRS. -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{XML_NAMESPACE}"
           xmlns:g="{XML_NAMESPACE}" elementFormDefault="qualified">
  <xs:element name="features">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="feature" type="g:Feature" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:attribute name="crs" type="xs:string" use="required"/>
      <xs:attribute name="count" type="xs:nonNegativeInteger" use="required"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="feature" type="g:Feature"/>
  <xs:complexType name="Feature">
    <xs:sequence>
      <xs:element name="property" minOccurs="0" maxOccurs="unbounded">
        <xs:complexType>
          <xs:simpleContent>
            <xs:extension base="xs:string">
              <xs:attribute name="name" type="xs:string" use="required"/>
              <xs:attribute name="null" type="xs:boolean" default="false"/>
            </xs:extension>
          </xs:simpleContent>
        </xs:complexType>
      </xs:element>
      <xs:element name="geometry" minOccurs="0">
        <xs:complexType>
          <xs:simpleContent>
            <xs:extension base="xs:string">
              <xs:attribute name="format" type="xs:string" fixed="WKT"/>
            </xs:extension>
          </xs:simpleContent>
        </xs:complexType>
      </xs:element>
    </xs:sequence>
    <xs:attribute name="urn" type="xs:string" use="required"/>
    <xs:attribute name="featureId" type="xs:string" use="required"/>
    <xs:attribute name="model" type="xs:string" use="required"/>
    <xs:attribute name="entityType" type="xs:string" use="required"/>
    <xs:attribute name="version" type="xs:positiveInteger" use="required"/>
  </xs:complexType>
</xs:schema>
"""

_XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xml_text(value: str) -> str:
    """Text as XML 1.0 allows it: &, < and > escaped, control characters XML cannot hold dropped."""
    return escape(_XML_UNSAFE.sub("", value))


def _xml_feature(feature: dict[str, Any], record: dict[str, Any], wkt: str, root: bool) -> str:
    base = feature["properties"]
    attributes = " ".join(f"{key}={quoteattr(_xml_text(str(base[key])))}" for key in IDENTITY)
    if root:
        attributes = f'xmlns="{XML_NAMESPACE}" {attributes}'
    lines = [f"<feature {attributes}>"]
    for name, value in record.items():
        if name in IDENTITY:
            continue
        null = ' null="true"' if value is None else ""
        lines.append(
            f"  <property name={quoteattr(_xml_text(name))}{null}>{_xml_text(_text(value))}</property>"
        )
    lines.append(f'  <geometry format="WKT">{wkt}</geometry>')
    lines.append("</feature>")
    return "\n".join(lines)


class XmlFile(_OneOrEach):
    """One ``features`` document (``target``; ``count`` is known before the first feature), or one
    ``feature`` document per record in an ``xml`` folder; the XSD beside them."""

    def __init__(
        self, target: Path, options: RecordOptions, columns: list[str], crs: str, count: int
    ) -> None:
        head = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<features xmlns="{XML_NAMESPACE}" crs="EPSG:{crs}" count="{count}">\n'
        )
        super().__init__(target, options, columns, "xml", head)
        self._schema = target.parent / XSD_NAME
        self._schema.write_text(XSD, encoding="utf-8")

    def write(self, features: list[dict[str, Any]], geometries: Geometries) -> None:
        rows = records(features, self._columns)
        for feature, record, wkt in zip(features, rows, _wkt(geometries), strict=True):
            document = _xml_feature(feature, record, wkt, root=self._each)
            whole = f'<?xml version="1.0" encoding="UTF-8"?>\n{document}\n' if self._each else ""
            self._put(feature, whole, "" if self._each else document + "\n")

    def close(self) -> list[Path]:
        return [*self._close("</features>\n"), self._schema]


# One-shot forms (a whole list of features whose geometries are already in the export's CRS).


def _geometries(features: list[dict[str, Any]]) -> Geometries:
    return np.array([shape(f["geometry"]) for f in features], dtype=object)


def _filled(features: list[dict[str, Any]], columns: list[str]) -> set[str]:
    return {k for record in records(features, columns) for k, v in record.items() if _text(v)}


def write_geojson(features: list[dict[str, Any]], options: RecordOptions, path: Path, sequence: bool) -> None:
    out = GeoJsonFile(path, options.columns(features), sequence)
    out.write(features, _geometries(features))
    out.close()


def write_csv(features: list[dict[str, Any]], options: RecordOptions, path: Path) -> None:
    columns = options.columns(features)
    out = CsvFile(path, options, columns, _filled(features, columns))
    out.write(features, _geometries(features))
    out.close()


def write_json(features: list[dict[str, Any]], options: RecordOptions, target: Path) -> list[Path]:
    out = JsonFile(target, options, options.columns(features))
    out.write(features, _geometries(features))
    return out.close()


def write_xml(features: list[dict[str, Any]], options: RecordOptions, target: Path, crs: str) -> list[Path]:
    out = XmlFile(target, options, options.columns(features), crs, len(features))
    out.write(features, _geometries(features))
    return out.close()
