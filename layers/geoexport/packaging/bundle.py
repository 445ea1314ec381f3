"""easydb's packers: the data files apart, in one zip, in zip parts no larger than a size, a tar.gz or a
tar.bz2.

A single file larger than a part goes alone into its own part (splitting one file across archives would
make every part useless on its own). The metadata JSON and the STAC Item stay outside the bundle so they can
list each part with its size and checksum.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from geoexport.models.tasks import Packer

ZIP_ENTRY_OVERHEAD = 200  # local header + central directory entry, bytes (plus the name, twice)


def _planned(path: Path) -> int:
    """An upper bound of the bytes a file adds to a zip (deflate never grows data by more than ~0.1 %)."""
    size = path.stat().st_size
    return size + size // 1000 + ZIP_ENTRY_OVERHEAD + 2 * len(path.name.encode())


def plan_parts(files: list[Path], max_part: int | None) -> list[list[Path]]:
    if not max_part:
        return [files]
    parts: list[list[Path]] = []
    current: list[Path] = []
    used = 22  # the end-of-central-directory record
    for path in files:
        need = _planned(path)
        if current and used + need > max_part:
            parts.append(current)
            current, used = [], 22
        current.append(path)
        used += need
    if current:
        parts.append(current)
    return parts


def member(path: Path, workdir: Path) -> str:
    """A file's name inside a bundle: its path under the work directory (one file per record of a VECTOR
    export sits in json/ or xml/), else its name."""
    return path.relative_to(workdir).as_posix() if path.is_relative_to(workdir) else path.name


def pack(files: list[Path], packer: Packer, max_part: int | None, workdir: Path, stem: str) -> list[Path]:
    """The files users download: ``files`` themselves (none), or the archives holding them."""
    if packer is Packer.NONE:
        return files
    if packer in (Packer.TAR_GZ, Packer.TAR_BZ2):
        target = workdir / f"{stem}.{packer.value}"
        with tarfile.open(target, "w:gz" if packer is Packer.TAR_GZ else "w:bz2") as archive:
            for path in files:
                archive.add(path, arcname=member(path, workdir))
        return [target]
    parts = plan_parts(files, max_part)
    archives = []
    for index, part in enumerate(parts, start=1):
        name = f"{stem}.zip" if len(parts) == 1 else f"{stem}.part{index:02d}.zip"
        target = workdir / name
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in part:
                archive.write(path, arcname=member(path, workdir))
        archives.append(target)
    return archives
