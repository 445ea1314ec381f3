"""A STAC Item (1.1.0) for every export: what was exported, where, in which CRS, and each file's checksum."""

from __future__ import annotations

from datetime import datetime
from typing import Any

STAC_VERSION = "1.1.0"
PROJECTION = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
FILE = "https://stac-extensions.github.io/file/v2.1.0/schema.json"

MEDIA_TYPES = {
    "GPKG": "application/geopackage+sqlite3",
    "GTIFF": "image/tiff; application=geotiff; profile=cloud-optimized",
    "METADATA": "application/json",
    "BUNDLE": "application/zip",
    "QUICKLOOK": "image/png",
    "GEOJSON": "application/geo+json",
    "CSV": "text/csv",
    "JSON": "application/json",
    "XML": "application/xml",
    "SCHEMA": "application/xml",
}
ROLES = {
    "METADATA": ["metadata"],
    "SIDECAR": ["metadata"],
    "SCHEMA": ["metadata"],
    "QUICKLOOK": ["thumbnail", "overview"],
}


def multihash_sha256(hex_digest: str) -> str:
    """``file:checksum`` is a multihash: 0x12 (sha2-256), 0x20 (32 bytes), then the digest."""
    return "1220" + hex_digest


def media_type(kind: str, name: str) -> str:
    if name.endswith(".tar.gz"):
        return "application/gzip"
    if name.endswith(".tar.bz2"):
        return "application/x-bzip2"
    if name.endswith(".tfw") or name.endswith(".clr"):
        return "text/plain"
    if name.endswith(".geojsonl"):
        return "application/geo+json-seq"
    if name.endswith(".xml") or name.endswith(".qml") or name.endswith(".xsd"):
        return "application/xml"
    return MEDIA_TYPES.get(kind, "application/octet-stream")


def build_item(
    *,
    item_id: str,
    footprint: dict[str, Any],
    bbox: list[float],
    epsg: int,
    files: list[dict[str, Any]],
    created: datetime,
    expires: datetime | None,
    record_id: str,
    record_name: str,
    description: str,
) -> dict[str, Any]:
    """``files``: {type, name, size, sha256} of each artifact the item describes (hrefs are file names,
    relative to the item: every artifact sits next to it)."""
    assets = {}
    for entry in files:
        roles = ROLES.get(str(entry["type"]), ["data"])
        assets[entry["name"]] = {
            "href": f"./{entry['name']}",
            "type": media_type(entry["type"], entry["name"]),
            "roles": roles,
            "file:size": entry["size"],
            "file:checksum": multihash_sha256(entry["sha256"]),
        }
        if entry["type"] == "QUICKLOOK":
            assets[entry["name"]].update({"title": "Quicklook", "proj:epsg": 3857})
    properties: dict[str, Any] = {
        "datetime": created.isoformat(),
        "created": created.isoformat(),
        "title": record_name,
        "description": description or f"export of {record_name}",
        "proj:epsg": epsg,
    }
    if expires is not None:
        properties["expires"] = expires.isoformat()
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [PROJECTION, FILE],
        "id": item_id,
        "geometry": footprint,
        "bbox": bbox,
        "properties": properties,
        "links": [
            {
                "rel": "derived_from",
                "href": f"/catalog/records/{record_id}",
                "type": "application/json",
                "title": f"source record {record_name}",
            }
        ],
        "assets": assets,
    }
