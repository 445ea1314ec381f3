"""The features' stored files copied into a VECTOR export (seed 002: "collect all objects and the
corresponding files, copy all files into the export file structure, link files to the object information
(relative local URLs to the exported files)").

Each STORED file goes to ``files/<featureId>/<name>`` (``flat``: ``files/<name>``), ``<name>`` being its
filename or the ``filename_template`` filled in; the copy's checksum is checked against the one recorded
when the file was stored; each record lists its files' paths relative to the export's root.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from geoexport.errors import ArtifactMismatch
from geoexport.packaging.records import FILES_COLUMN, RecordOptions, plain_name

ALGORITHMS = {"MD5": "md5", "SHA-256": "sha256"}


class FileSource(Protocol):
    def download(self, url: str, path: Path) -> None: ...


class _Blank(dict[str, str]):
    """Template values: a property the feature does not have is empty, not an error."""

    def __missing__(self, key: str) -> str:
        return ""


def _name(feature: dict[str, Any], entry: dict[str, Any], index: int, template: str | None) -> str:
    if template is None:
        return plain_name(str(entry["filename"]))
    path = PurePosixPath(str(entry["filename"]))
    base = feature["properties"]
    values = _Blank(
        {
            k: "" if v is None else str(v)
            for k, v in base["properties"].items()
            if not isinstance(v, dict | list)
        }
    )
    values.update(
        urn=str(base["urn"]), featureId=str(base["featureId"]), model=str(base["model"]),
        entityType=str(base["entityType"]), version=str(base["version"]), filename=path.name, stem=path.stem,
        ext=path.suffix, dataType=str(entry["dataType"]), index=str(index),
    )  # fmt: skip
    return plain_name(template.format_map(values))


def _unique(relative: PurePosixPath, taken: set[str]) -> PurePosixPath:
    """``name-2.ext``, ``name-3.ext``... when a template or a flat layout gives two files one name."""
    candidate, number = relative, 1
    while candidate.as_posix() in taken:
        number += 1
        candidate = relative.with_name(f"{relative.stem}-{number}{relative.suffix}")
    taken.add(candidate.as_posix())
    return candidate


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(ALGORITHMS[algorithm])
    with path.open("rb") as handle:
        while block := handle.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def copy_files(
    features: list[dict[str, Any]],
    options: RecordOptions,
    workdir: Path,
    source: FileSource,
    taken: set[str] | None = None,
) -> list[Path]:
    """Copy every exported feature's stored files under ``workdir`` and record their relative paths on the
    feature (``properties.properties.files``); the copies, in order. ``taken``: the paths earlier chunks
    used. A copy whose checksum differs from the recorded one fails the export (ArtifactMismatch: the
    stored file changed since it was verified)."""
    copied: list[Path] = []
    taken = set() if taken is None else taken
    for feature in features:
        base = feature["properties"]
        paths: list[str] = []
        for index, entry in enumerate(feature.get("files") or [], start=1):
            name = _name(feature, entry, index, options.filename_template)
            folder = (
                PurePosixPath("files")
                if options.flat
                else PurePosixPath("files", plain_name(str(base["featureId"])))
            )
            relative = _unique(folder / name, taken)
            target = workdir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            source.download(str(entry["url"]), target)
            if entry.get("algorithm") and entry.get("checksum"):
                actual = _digest(target, str(entry["algorithm"]))
                if actual != str(entry["checksum"]).lower():
                    raise ArtifactMismatch(
                        f"file {entry['filename']} of feature {base['urn']} does not match its recorded "
                        f"{entry['algorithm']} ({actual} instead of {entry['checksum']}): it changed after "
                        "it was stored; store it again, then export again"
                    )
            paths.append(relative.as_posix())
            copied.append(target)
        base["properties"] = {**base["properties"], FILES_COLUMN: paths}
    return copied
