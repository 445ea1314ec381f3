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
import re
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from shapely.geometry import shape

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
        """The property columns of (shaped) features: the asked order, else every name sorted; then the
        relative paths of the copied files (``files``)."""
        if self.fields is not None:
            names = [spec.display_name or name for name, spec in self.fields.items()]
        else:
            names = sorted({k for f in features for k in f["properties"]["properties"]})
            names = [name for name in names if name != FILES_COLUMN] if self.files else names
        return [*names, FILES_COLUMN] if self.files else names


def _text(value: Any) -> str:
    """A value as a CSV or XML cell: null -> empty, objects and lists as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def records(features: list[dict[str, Any]], options: RecordOptions) -> Iterator[dict[str, Any]]:
    """Each (shaped) feature as its record: identity, then the property columns (geometry apart)."""
    columns = options.columns(features)
    for feature in features:
        base, props = feature["properties"], feature["properties"]["properties"]
        record = {key: base.get(key) for key in IDENTITY}
        record.update({name: props.get(name) for name in columns})
        yield record


def write_geojson(features: list[dict[str, Any]], options: RecordOptions, path: Path, sequence: bool) -> None:
    """``features`` in EPSG:4326: one FeatureCollection, or one Feature per line."""
    with path.open("w", encoding="utf-8") as out:
        if not sequence:
            out.write('{"type":"FeatureCollection","features":[\n')
        for index, (feature, record) in enumerate(zip(features, records(features, options), strict=True)):
            item = {"type": "Feature", "id": record["urn"], "geometry": feature["geometry"]}
            item["properties"] = record
            text = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
            out.write(text + "\n" if sequence else ("," if index else "") + text + "\n")
        if not sequence:
            out.write("]}\n")


def write_csv(features: list[dict[str, Any]], options: RecordOptions, path: Path) -> None:
    """A header, then a row per feature, the geometry as WKT in the last column (``WKT``: GDAL's CSV driver
    reads it as the geometry)."""
    rows = [
        [_text(v) for v in record.values()] + [shapely.to_wkt(shape(f["geometry"]), rounding_precision=-1)]
        for f, record in zip(features, records(features, options), strict=True)
    ]
    header = [*IDENTITY, *options.columns(features), "WKT"]
    keep = list(range(len(header)))
    if not (options.csv and options.csv.empty_columns):
        identity = len(IDENTITY)
        keep = [i for i in keep if i < identity or i == len(header) - 1 or any(row[i] for row in rows)]
    settings = options.csv or CsvOptions.model_validate({})
    with path.open("w", encoding="utf-8-sig" if settings.use_bom else "utf-8", newline="") as out:
        writer = csv.writer(
            out,
            delimiter=settings.delimiter,
            quotechar=settings.quote,
            escapechar=None if settings.escape == settings.quote else settings.escape,
            doublequote=settings.escape == settings.quote,
            quoting=csv.QUOTE_ALL,
            lineterminator="\r\n",
        )
        writer.writerow([header[i] for i in keep])
        for row in rows:
            writer.writerow([row[i] for i in keep])


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


def write_json(features: list[dict[str, Any]], options: RecordOptions, target: Path) -> list[Path]:
    """One JSON array (``target``), or one file per record under ``target``'s stem directory."""
    items = [
        {**record, "geometry": f["geometry"]}
        for f, record in zip(features, records(features, options), strict=True)
    ]
    if not options.one_file_per_object:
        target.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
        return [target]
    folder = target.parent / "json"
    folder.mkdir(exist_ok=True)
    written = []
    for item, feature in zip(items, features, strict=True):
        path = _one_file(folder, feature, ".json")
        path.write_text(json.dumps(item, ensure_ascii=False, indent=1), encoding="utf-8")
        written.append(path)
    return written


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


def _xml_feature(feature: dict[str, Any], record: dict[str, Any], options: RecordOptions, root: bool) -> str:
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
    wkt = shapely.to_wkt(shape(feature["geometry"]), rounding_precision=-1)
    lines.append(f'  <geometry format="WKT">{wkt}</geometry>')
    lines.append("</feature>")
    return "\n".join(lines)


def write_xml(features: list[dict[str, Any]], options: RecordOptions, target: Path, crs: str) -> list[Path]:
    """One ``features`` document (``target``), or one ``feature`` document per record; the XSD beside."""
    schema = target.parent / XSD_NAME
    schema.write_text(XSD, encoding="utf-8")
    rows = list(records(features, options))
    if not options.one_file_per_object:
        with target.open("w", encoding="utf-8") as out:
            out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
            out.write(f'<features xmlns="{XML_NAMESPACE}" crs="EPSG:{crs}" count="{len(features)}">\n')
            for feature, record in zip(features, rows, strict=True):
                out.write(_xml_feature(feature, record, options, root=False) + "\n")
            out.write("</features>\n")
        return [target, schema]
    folder = target.parent / "xml"
    folder.mkdir(exist_ok=True)
    written = []
    for feature, record in zip(features, rows, strict=True):
        path = _one_file(folder, feature, ".xml")
        document = _xml_feature(feature, record, options, root=True)
        path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n' + document + "\n", encoding="utf-8")
        written.append(path)
    return [*written, schema]
