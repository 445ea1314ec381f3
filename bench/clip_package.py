"""Benchmark: our clip+package against the GDAL command-line pipeline producing the same GeoPackage.

Workload: RGB.byte.tif upsampled 8x (6328 x 5744 px, 37.5 m, as a COG), one ROI, exported at the zoom
of its native resolution (WorldCRS84Quad zoom 11) with every level 0..11.

  ours: Clip's plan, then one warp per block straight into GeoPackage tiles, every level from the source
  gdal: gdalwarp (cutline, alpha) -> gdal_translate (GPKG, InspireCRS84Quad) -> gdaladdo (levels 0..10)

Both get the same threads. Runs alternate, the median of each counts; the last line is the ratio.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import rasterio

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / ".work"
THREADS = int(os.environ.get("BENCH_THREADS", str(os.cpu_count() or 2)))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
ROI = {
    "type": "Polygon",
    "coordinates": [
        [[-78.3, 24.1], [-77.2, 24.1], [-76.9, 24.7], [-77.3, 25.3], [-78.3, 25.3], [-78.3, 24.1]]
    ],
}


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


def ours_child(source: str, out: str) -> None:
    """Runs in a child process so its peak RSS is its own."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from geoexport.catalog.ingest import describe_record
    from geoexport.geometry import grid
    from geoexport.models import (
        CreateExportTaskRequest,
        SourceLocation,
        TaskRecord,
        TaskStatus,
    )
    from geoexport.pipeline.clip import build_plan
    from geoexport.pipeline.package import render_gpkg

    started = time.perf_counter()
    record = describe_record(
        source, uuid4(), "bench", SourceLocation(bucket="local", key=source), measure_costs=False
    )
    zoom = grid.zoom_for_resolution(record.maxResolutionDeg)
    request = CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(record.id),
            "domain": "RASTER",
            "ROI": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"maxResolutionDeg": grid.resolution(zoom)},
                        "geometry": ROI,
                    }
                ],
            },
        }
    )
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid4(), status=TaskStatus.IN_PROGRESS, progress=0, request=request, createdAt=now, updatedAt=now
    )
    plan = build_plan(task, record)
    stats = render_gpkg(plan, source, Path(out), THREADS, {})
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": elapsed, "peak_bytes": peak, "zoom": zoom, "tiles": stats.tiles_per_zoom}))


def run_ours(source: Path, out: Path) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--ours", str(source), str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_gdal(source: Path, out: Path, zoom: int) -> float:
    from geoexport.geometry import grid

    res = grid.resolution(zoom)
    cutline = WORK / "roi.geojson"
    cutline.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": ROI}],
            }
        )
    )
    warped = WORK / "gdal_warped.tif"
    for path in (warped, out):
        path.unlink(missing_ok=True)
    env = {**os.environ, "GDAL_NUM_THREADS": str(THREADS), "GDAL_CACHEMAX": "256"}
    factors = [str(2**i) for i in range(1, zoom + 1)]
    commands = [
        [
            "gdalwarp",
            "-q",
            "-multi",
            "-wo",
            f"NUM_THREADS={THREADS}",
            "-t_srs",
            "EPSG:4326",
            "-tr",
            str(res),
            str(res),
            "-tap",
            "-r",
            "bilinear",
            "-cutline",
            str(cutline),
            "-crop_to_cutline",
            "-dstalpha",
            "-co",
            "TILED=YES",
            str(source),
            str(warped),
        ],
        # No ZOOM_LEVEL (GDAL 3.6 lacks it): from an input already at the zoom's resolution, the driver
        # picks that zoom; the tile counts printed below show both files hold the same levels.
        [
            "gdal_translate",
            "-q",
            "-of",
            "GPKG",
            "-co",
            "TILING_SCHEME=InspireCRS84Quad",
            "-co",
            "TILE_FORMAT=PNG",
            "-co",
            "RESAMPLING=BILINEAR",
            str(warped),
            str(out),
        ],
        ["gdaladdo", "-q", "-r", "average", str(out), *factors],
    ]
    started = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    source = make_source()
    validator = "/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py"
    gdal_version = subprocess.run(
        ["gdalinfo", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()

    print(f"workload: {source.name} (RGB.byte.tif x8), threads={THREADS}, runs={RUNS}")
    print(
        f"ours: rasterio {rasterio.__version__} / GDAL {rasterio.__gdal_version__}; gdal CLI: {gdal_version}"
    )
    ours_times, gdal_times, peaks = [], [], []
    ours_out, gdal_out = WORK / "ours.gpkg", WORK / "gdal.gpkg"
    zoom = 0
    for run in range(RUNS):
        result = run_ours(source, ours_out)
        zoom = int(result["zoom"])
        ours_times.append(result["seconds"])
        peaks.append(result["peak_bytes"])
        gdal_times.append(run_gdal(source, gdal_out, zoom))
        print(f"run {run + 1}: ours {ours_times[-1]:.2f} s, gdal {gdal_times[-1]:.2f} s")
    for name, path in (("ours", ours_out), ("gdal", gdal_out)):
        check = subprocess.run(
            ["/usr/bin/python3", validator, str(path)], capture_output=True, text=True, check=False
        )
        with sqlite3.connect(path) as db:
            levels = db.execute(
                "SELECT COUNT(DISTINCT zoom_level), COUNT(*) FROM "
                "(SELECT zoom_level FROM " + ("tiles" if name == "ours" else "gdal") + ")"
            ).fetchone()
        print(
            f"{name}: {path.stat().st_size / 1e6:.1f} MB, {levels[1]} tiles in {levels[0]} zoom levels, "
            f"validator {'ok' if check.returncode == 0 else 'FAILED: ' + check.stdout[-200:]}"
        )
    ours, gdal = statistics.median(ours_times), statistics.median(gdal_times)
    print(f"zoom: {zoom}; median ours {ours:.2f} s, gdal {gdal:.2f} s")
    print(f"peak memory of ours: {max(peaks) / 2**20:.0f} MiB")
    print(f"ratio ours/gdal: {ours / gdal:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--ours":
        ours_child(sys.argv[2], sys.argv[3])
    else:
        main()
