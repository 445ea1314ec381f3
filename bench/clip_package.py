"""Raster benchmark (issue 14): our Package step against fair GDAL peers, whole processes, alternating.

Workload: RGB.byte.tif upsampled 8x (6328 x 5744 px, 37.5 m, as a COG), one ROI.

1. GeoPackage at the ROI's native zoom (WorldCRS84Quad 11), every level 0..11, PNG tiles:
   - ours: `python bench/clip_package.py --ours-gpkg` (imports, plan, render, validation-ready file);
   - the fair peer: `gdalwarp -multi -wo NUM_THREADS=N -r <our resampling> -cutline roi -crop_to_cutline
     -dstalpha -of GPKG -co TILING_SCHEME=InspireCRS84Quad -co TILE_FORMAT=PNG`, then
     `gdaladdo -oo TILE_FORMAT=PNG -r <our resampling>` (levels 0..10);
   - a second peer: `gdal2tiles.py --profile=geodetic -d --xyz` on a cutline VRT, N processes.
   Both GeoPackages are checked: same tiles, PNG only, pixels compared (mean absolute difference of RGB
   where both are opaque, and the share of pixels whose transparency differs).
2. GeoTIFF (COG) in EPSG:3035 at the same resolution: ours (`render_cog`, statistics and sidecars
   included) against `gdalwarp -multi -wo NUM_THREADS=N -r bilinear ... -of COG -co COMPRESS=DEFLATE
   -co BLOCKSIZE=512 -co OVERVIEWS=AUTO -co OVERVIEW_RESAMPLING=AVERAGE -co NUM_THREADS=N`.
3. Peak memory of the Package step at two export sizes (89 and 898 tiles), each in its own process.

Every time is a whole process measured from outside (imports included); runs alternate; medians count.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
WORK = ROOT / "bench" / ".work"
THREADS = int(os.environ.get("BENCH_THREADS", str(os.cpu_count() or 2)))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))  # at least 3 for figures; 1 to try the script
ROI = {
    "type": "Polygon",
    "coordinates": [
        [[-78.3, 24.1], [-77.2, 24.1], [-76.9, 24.7], [-77.3, 25.3], [-78.3, 25.3], [-78.3, 24.1]]
    ],
}
PNG = b"\x89PNG\r\n\x1a\n"


def make_source() -> Path:
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.shutil import copy

    target = WORK / "rgb_x8_cog.tif"
    if target.exists():
        return target
    WORK.mkdir(parents=True, exist_ok=True)
    with rasterio.open(ROOT / "infra" / "sample-data" / "RGB.byte.tif") as src:
        width, height = src.width * 8, src.height * 8
        data = src.read(out_shape=(src.count, height, width), resampling=Resampling.bilinear)
        profile = src.profile | {
            "width": width,
            "height": height,
            "transform": src.transform * src.transform.scale(1 / 8, 1 / 8),
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
        }
    upsampled = WORK / "rgb_x8.tif"
    with rasterio.open(upsampled, "w", **profile) as dst:
        dst.write(data)
    copy(
        upsampled,
        target,
        driver="COG",
        COMPRESS="DEFLATE",
        BLOCKSIZE="512",
        OVERVIEWS="AUTO",
        RESAMPLING="AVERAGE",
        NUM_THREADS="ALL_CPUS",
    )
    upsampled.unlink()
    return target


def _plan(source: str) -> Any:
    """Our Clip step's plan for the ROI at the source's native zoom."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from geoexport.catalog.ingest import describe_record
    from geoexport.geometry import grid
    from geoexport.models import CreateExportTaskRequest, SourceLocation, TaskRecord, TaskStatus
    from geoexport.pipeline.clip import build_plan

    record = describe_record(
        source, uuid4(), "bench", SourceLocation(bucket="local", key=source), measure_costs=False
    )
    zoom = grid.zoom_for_resolution(record.maxResolutionDeg)
    feature = {"type": "Feature", "properties": {"maxResolutionDeg": grid.resolution(zoom)}, "geometry": ROI}
    request = CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(record.id),
            "domain": "RASTER",
            "ROI": {"type": "FeatureCollection", "features": [feature]},
        }
    )
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid4(), status=TaskStatus.IN_PROGRESS, progress=0, request=request, createdAt=now, updatedAt=now
    )
    return build_plan(task, record), record, zoom


def ours_gpkg(source: str, out: str) -> None:
    """Child process: the Package step's GeoPackage, as the function runs it."""
    from geoexport.pipeline.package import render_gpkg
    from geoexport.raster.render import TileRenderer, inspect_bands
    from tests.integration.test_render_memory import peak_rss

    plan, record, zoom = _plan(source)
    stats = render_gpkg(plan, source, Path(out), THREADS, {})
    bands = inspect_bands(source, record.maxResolutionDeg)
    resampling = TileRenderer(source, bands, {})._choose(zoom)[1].name  # what our finest level used
    print(
        json.dumps(
            {"zoom": zoom, "tiles": stats.tiles_per_zoom, "resampling": resampling, "peak": peak_rss()}
        )
    )


def ours_cog(source: str, out: str) -> None:
    """Child process: the Package step's GeoTIFF in EPSG:3035 (statistics and sidecars included)."""
    from geoexport.geometry import grid
    from geoexport.raster.cog import render_cog

    _, _, zoom = _plan(source)
    result = render_cog(source, ROI, "3035", grid.resolution(zoom), Path(out), THREADS)
    print(
        json.dumps({"width": result.width, "height": result.height, "transform": list(result.transform)[:6]})
    )


def whole(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return time.perf_counter() - started, done.stdout


def roi_file() -> Path:
    path = WORK / "roi.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": ROI}],
            }
        )
    )
    return path


GDAL_ENV = {**os.environ, "GDAL_NUM_THREADS": str(THREADS), "GDAL_CACHEMAX": "256"}


def _warp(srs: str, res: str, resampling: str) -> list[str]:
    """What every gdalwarp peer shares: our threads, grid, resampling, the ROI as cutline, alpha."""
    return ["gdalwarp", "-q", "-multi", "-wo", f"NUM_THREADS={THREADS}", "-t_srs", srs, "-tr", res, res,
            "-r", resampling, "-cutline", str(roi_file()), "-crop_to_cutline", "-dstalpha"]  # fmt: skip


def fair_gpkg(source: Path, out: Path, zoom: int, resampling: str) -> float:
    from geoexport.geometry import grid

    res = str(grid.resolution(zoom))
    out.unlink(missing_ok=True)
    warp = [
        *_warp("EPSG:4326", res, resampling),
        "-tap",
        "-of",
        "GPKG",
        "-co",
        "TILING_SCHEME=InspireCRS84Quad",
        "-co",
        "TILE_FORMAT=PNG",
        str(source),
        str(out),
    ]
    overviews = [
        "gdaladdo",
        "-q",
        "-oo",
        "TILE_FORMAT=PNG",
        "-r",
        resampling,
        str(out),
        *[str(2**i) for i in range(1, zoom + 1)],
    ]
    return whole(warp, GDAL_ENV)[0] + whole(overviews, GDAL_ENV)[0]


def gdal2tiles(source: Path, out: Path, zoom: int, resampling: str) -> float:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    vrt = WORK / "roi.vrt"
    cut = [
        "gdalwarp",
        "-q",
        "-of",
        "VRT",
        "-t_srs",
        "EPSG:4326",
        "-cutline",
        str(roi_file()),
        "-crop_to_cutline",
        "-dstalpha",
        "-overwrite",
        str(source),
        str(vrt),
    ]
    tiles = [
        "gdal2tiles.py",
        "-q",
        "--profile=geodetic",
        "-d",
        "--xyz",
        "-r",
        resampling,
        f"--processes={THREADS}",
        "-z",
        f"0-{zoom}",
        "-w",
        "none",
        str(vrt),
        str(out),
    ]
    return whole(cut, GDAL_ENV)[0] + whole(tiles, GDAL_ENV)[0]


def gdal_cog(source: Path, out: Path, zoom: int) -> float:
    from rasterio.crs import CRS

    from geoexport.geometry import grid
    from geoexport.raster.cog import target_resolution

    res = str(target_resolution(CRS.from_epsg(3035), grid.resolution(zoom)))
    out.unlink(missing_ok=True)
    command = [
        *_warp("EPSG:3035", res, "bilinear"),
        "-of",
        "COG",
        "-co",
        "COMPRESS=DEFLATE",
        "-co",
        "BLOCKSIZE=512",
        "-co",
        "OVERVIEWS=AUTO",
        "-co",
        "OVERVIEW_RESAMPLING=AVERAGE",
        "-co",
        f"NUM_THREADS={THREADS}",
        str(source),
        str(out),
    ]
    return whole(command, GDAL_ENV)[0]


def tiles_of(path: Path) -> dict[tuple[int, int, int], bytes]:
    with sqlite3.connect(path) as db:
        (table,) = db.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'tiles'").fetchone()
        rows = db.execute(f'SELECT zoom_level, tile_column, tile_row, tile_data FROM "{table}"').fetchall()
    return {(z, c, r): bytes(data) for z, c, r, data in rows}


def rgba(data: bytes) -> np.ndarray[Any, Any]:
    import warnings

    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a tile is a bare PNG
        with MemoryFile(io.BytesIO(data)) as memory, memory.open() as png:
            pixels = png.read()
    if pixels.shape[0] == 3:  # an opaque tile written without alpha
        pixels = np.concatenate([pixels, np.full((1, *pixels.shape[1:]), 255, np.uint8)])
    return pixels


def compare(ours: Path, peer: Path) -> dict[str, Any]:
    a, b = tiles_of(ours), tiles_of(peer)
    common = sorted(set(a) & set(b))
    differences, alpha_mismatch, pixels = [], 0, 0
    for key in common[:: max(1, len(common) // 400)]:
        x, y = rgba(a[key]).astype(np.int16), rgba(b[key]).astype(np.int16)
        both = (x[3] > 0) & (y[3] > 0)
        if both.any():
            differences.append(float(np.abs(x[:3][:, both] - y[:3][:, both]).mean()))
        alpha_mismatch += int(((x[3] > 0) != (y[3] > 0)).sum())
        pixels += x[3].size
    return {
        "ours_only": len(set(a) - set(b)),
        "peer_only": len(set(b) - set(a)),
        "common": len(common),
        "png_only": all(t.startswith(PNG) for t in (*a.values(), *b.values())),
        "mad": statistics.mean(differences) if differences else 0.0,
        "alpha_differs": alpha_mismatch / max(1, pixels),
    }


def main() -> None:
    from tests.integration.test_render_memory import run as memory_run

    source = make_source()
    gdal_version = subprocess.run(
        ["gdalinfo", "--version"], capture_output=True, text=True, check=True
    ).stdout
    print(
        f"workload: {source.name} (RGB.byte.tif x8), threads={THREADS}, runs={RUNS}; {gdal_version.strip()}"
    )
    me = [sys.executable, __file__]
    ours_out, fair_out, tiles_out = WORK / "ours.gpkg", WORK / "fair.gpkg", WORK / "gdal2tiles"
    times: dict[str, list[float]] = {"ours": [], "fair": [], "gdal2tiles": [], "ours_cog": [], "gdal_cog": []}
    first: dict[str, Any] = {}
    for run in range(RUNS):
        seconds, out = whole([*me, "--ours-gpkg", str(source), str(ours_out)])
        times["ours"].append(seconds)
        first = first or json.loads(out.strip().splitlines()[-1])
        zoom, resampling = int(first["zoom"]), str(first["resampling"])
        times["fair"].append(fair_gpkg(source, fair_out, zoom, resampling))
        times["gdal2tiles"].append(gdal2tiles(source, tiles_out, zoom, resampling))
        times["ours_cog"].append(whole([*me, "--ours-cog", str(source), str(WORK / "ours_3035.tif")])[0])
        times["gdal_cog"].append(gdal_cog(source, WORK / "gdal_3035.tif", zoom))
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    check = compare(ours_out, fair_out)
    g2t = sum(1 for _ in tiles_out.rglob("*.png"))
    ours_tiles = sum(int(v) for v in first["tiles"].values())
    print(
        f"\nGeoPackage, zoom {first['zoom']} (levels 0..{first['zoom']}), resampling {first['resampling']}:"
    )
    print(f"  ours {med['ours']:.2f} s ({ours_tiles} tiles, peak {first['peak'] / 2**20:.0f} MiB)")
    print(
        f"  fair peer (gdalwarp -of GPKG + gdaladdo, PNG) {med['fair']:.2f} s: "
        f"ratio ours/peer {med['ours'] / med['fair']:.2f} (goal <= 0.6)"
    )
    print(
        f"    tiles: {check['common']} common, {check['ours_only']} only ours, {check['peer_only']} only the "
        f"peer's; PNG only: {check['png_only']}; pixels: mean abs difference {check['mad']:.2f} (of 255), "
        f"transparency differs on {check['alpha_differs']:.2%}"
    )
    print(
        f"  gdal2tiles --profile=geodetic {med['gdal2tiles']:.2f} s ({g2t} tiles): "
        f"ratio ours/peer {med['ours'] / med['gdal2tiles']:.2f}"
    )
    print(
        f"\nGeoTIFF (COG) in EPSG:3035: ours {med['ours_cog']:.2f} s, "
        f"gdalwarp -of COG {med['gdal_cog']:.2f} s: "
        f"ratio {med['ours_cog'] / med['gdal_cog']:.2f} (goal <= 1.25, i.e. within 0.8x GDAL's speed)"
    )
    with tempfile.TemporaryDirectory() as scratch:
        small, large = memory_run(9, Path(scratch) / "s.gpkg"), memory_run(11, Path(scratch) / "l.gpkg")
    print(
        f"\nPackage step peak memory: {small['tiles']} tiles {small['peak'] / 2**20:.0f} MiB, "
        f"{large['tiles']} tiles {large['peak'] / 2**20:.0f} MiB (ratio {large['peak'] / small['peak']:.2f}; "
        f"goal: no growth, <= 400 MiB)"
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--ours-gpkg":
        ours_gpkg(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "--ours-cog":
        ours_cog(sys.argv[2], sys.argv[3])
    else:
        main()
