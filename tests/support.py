"""Helpers shared by the test tiers: real readers (GDAL's validator, rasterio, sqlite), a webhook receiver."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "infra" / "sample-data"
GDAL_VALIDATOR = Path("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_gpkg.py")
SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def validate_gpkg(path: Path) -> None:
    """Run GDAL's GeoPackage validator (Debian python3-gdal); it exits non-zero on any violation."""
    assert GDAL_VALIDATOR.exists(), "GDAL's validator is missing: `make test` installs python3-gdal"
    result = subprocess.run(
        [SYSTEM_PYTHON, str(GDAL_VALIDATOR), str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"validate_gpkg.py failed:\n{result.stdout}\n{result.stderr}"


def tile_counts(path: Path) -> dict[int, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT zoom_level, COUNT(*) FROM tiles GROUP BY zoom_level").fetchall())


def visible_bounds(path: Path) -> dict[int, tuple[float, float, float, float]]:
    """Per zoom, the lon/lat bounds of the pixels that are not transparent, decoded from the tiles."""
    from rasterio.io import MemoryFile

    from geoexport.geometry import grid

    found: dict[int, tuple[float, float, float, float]] = {}
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles").fetchall()
    for zoom, col, row, blob in rows:
        with MemoryFile(blob) as memfile, memfile.open() as png:
            data = png.read()
        alpha = data[-1] if data.shape[0] in (2, 4) else data[0] * 0 + 255
        ys, xs = (alpha > 0).nonzero()
        if not len(xs):
            continue
        res = grid.resolution(zoom)
        minx, _, _, maxy = grid.tile_bounds(zoom, col, row)
        box = (
            minx + xs.min() * res,
            maxy - (ys.max() + 1) * res,
            minx + (xs.max() + 1) * res,
            maxy - ys.min() * res,
        )
        old = found.get(zoom, box)
        found[zoom] = (min(old[0], box[0]), min(old[1], box[1]), max(old[2], box[2]), max(old[3], box[3]))
    return found


@dataclass
class Comparison:
    compared: int
    mean_abs_diff: float
    p99_abs_diff: float
    visible_outside_roi: int
    missing_inside: int  # source has data inside the ROI but the GeoPackage is transparent there


def compare_with_source(gpkg: Path, source: Path, roi: dict[str, Any]) -> Comparison:
    """Read the GeoPackage at its max zoom and the source warped independently onto the same grid."""
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.features import geometry_mask
    from rasterio.warp import reproject

    with rasterio.open(gpkg) as exported:
        data = exported.read()
        transform, shape = exported.transform, (exported.height, exported.width)
    with rasterio.open(source) as src:
        n = 3 if src.count >= 3 else 1
        reference = np.zeros((n + 1, *shape), dtype=np.uint8)
        reproject(
            rasterio.band(src, list(range(1, n + 1))),
            reference,
            src_nodata=src.nodata,
            dst_transform=transform,
            dst_crs="EPSG:4326",
            dst_alpha=n + 1,
            resampling=Resampling.bilinear,
        )
    inside = geometry_mask([roi], shape, transform, invert=True)  # pixel centres inside the ROI
    outside = ~geometry_mask([roi], shape, transform, invert=True, all_touched=True)
    alpha = data[3]
    both = inside & (reference[n] == 255) & (alpha == 255)
    exported_bands = data[:3] if n == 3 else data[:1]
    diff = np.abs(exported_bands.astype(int) - reference[:n].astype(int))[:, both]
    interior = inside & (reference[n] == 255)
    return Comparison(
        compared=int(both.sum()),
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        p99_abs_diff=float(np.percentile(diff, 99)) if diff.size else 0.0,
        visible_outside_roi=int((alpha[outside] > 0).sum()),
        missing_inside=int(((alpha == 0) & interior).sum()),
    )


@dataclass
class Receiver:
    """A real HTTP server on loopback that records every webhook POST."""

    port: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    failing: dict[str, int] = field(default_factory=dict)  # path -> answer 503 this many more times
    _server: ThreadingHTTPServer | None = None
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._arrived:
                    status = 204
                    if receiver.failing.get(self.path, 0) > 0:
                        receiver.failing[self.path] -= 1
                        status = 503
                    receiver.calls.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": json.loads(body),
                            "raw": body,
                            "status": status,
                            "at": time.monotonic(),
                        }
                    )
                    receiver._arrived.notify_all()
                self.send_response(status)
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.calls) >= count, timeout=timeout)
            return list(self.calls)

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def compare_geotiff(tif: Path, source: Path, roi: dict[str, Any]) -> Comparison:
    """A GeoTIFF export against the source warped independently onto its grid (in its CRS).

    ``visible_outside_roi`` counts exported pixels wholly outside the ROI, ``missing_inside`` pixels
    whose centre is inside the ROI where the source has data but the export has none: both zero means
    the footprint is the ROI intersected with the source's data, within one pixel.
    """
    import numpy as np
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.features import geometry_mask
    from rasterio.warp import reproject, transform_geom

    with rasterio.open(tif) as exported:
        data = exported.read()
        transform, crs, shape = exported.transform, exported.crs, (exported.height, exported.width)
        if exported.nodata is not None:
            valid = (data[: exported.count] != exported.nodata).any(axis=0)
            bands = data
        else:
            valid = data[-1] > 0
            bands = data[:-1]
    with rasterio.open(source) as src:
        n = src.count
        reference = np.zeros((n + 1, *shape), dtype=src.dtypes[0])
        reproject(
            rasterio.band(src, list(range(1, n + 1))),
            reference,
            src_nodata=src.nodata,
            dst_transform=transform,
            dst_crs=crs,
            dst_alpha=n + 1,
            resampling=Resampling.nearest if n == 1 else Resampling.bilinear,
        )
    region = transform_geom("EPSG:4326", crs, roi, precision=-1)
    inside = geometry_mask([region], shape, transform, invert=True)
    outside = ~geometry_mask([region], shape, transform, invert=True, all_touched=True)
    has_source = reference[n] > 0
    # A pixel next to the source's nodata edge mixes nodata in a bilinear warp (differently in each of two
    # warps): compare values away from that edge (one pixel in); coverage is checked on every pixel.
    interior = has_source.copy()
    interior[1:, :] &= has_source[:-1, :]
    interior[:-1, :] &= has_source[1:, :]
    interior[:, 1:] &= has_source[:, :-1]
    interior[:, :-1] &= has_source[:, 1:]
    both = inside & interior & valid
    diff = np.abs(bands[:n].astype(int) - reference[:n].astype(int))[:, both]
    return Comparison(
        compared=int(both.sum()),
        mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
        p99_abs_diff=float(np.percentile(diff, 99)) if diff.size else 0.0,
        visible_outside_roi=int((valid & outside).sum()),
        missing_inside=int((~valid & inside & has_source).sum()),
    )


def check_quicklook(png: Path, bounds: list[float], region: dict[str, Any], covered: bool = True) -> float:
    """The quicklook as GDAL's PNG driver reads it: an EPSG:3857 image over ``bounds`` (degrees, holding
    ``region``) whose visible pixels cover ``region`` (EPSG:4326) and nothing more, within a pixel's rim;
    exactly ``region`` when the source has data all over it (``covered``). Returns the visible share."""
    import numpy as np
    import rasterio
    from rasterio.warp import transform_bounds, transform_geom
    from shapely.geometry import box, shape

    with rasterio.open(png) as ds:
        pixels = ds.read()
    bands, height, width = pixels.shape
    assert bands in (2, 4) and max(width, height) <= 512, pixels.shape
    alpha = pixels[-1]
    west, south, east, north = bounds
    rw, rs, re, rn = shape(region).bounds
    # Within the export's own pixel (a GeoPackage's extent snaps to its tile grid).
    slack = 0.01 * (re - rw)
    assert west <= rw + slack and south <= rs + slack and east >= re - slack and north >= rn - slack, bounds
    mercator = shape(transform_geom("EPSG:4326", "EPSG:3857", region))
    frame = box(*transform_bounds("EPSG:4326", "EPSG:3857", west, south, east, north))
    expected = mercator.area / frame.area
    visible = float((alpha > 0).mean())
    rim = mercator.length * (frame.bounds[2] - frame.bounds[0]) / width / frame.area  # a pixel wide
    assert visible <= expected + max(0.01, 2 * rim), (visible, expected)
    if covered:
        assert visible >= expected - max(0.01, 2 * rim), (visible, expected)
    colour = pixels[:-1][:, alpha > 0]
    assert colour.size and float(np.std(colour)) > 1.0, "the visible part is not one flat colour"
    return visible


class NumberedFeatures:
    """A generated feature source behind the pipeline's ``FeatureSource`` port: features 0..count-1 made by
    ``feature(i)``, in pages whose token is the next number (whole exports only)."""

    count: int
    pages: int = 0

    def feature(self, i: int) -> Any:
        raise NotImplementedError

    def list(
        self,
        owner: str,
        bbox: tuple[float, float, float, float] | None,
        model: str | None,
        entity_type: str | None,
        limit: int,
        next_token: str | None,
        where: Any = None,
    ) -> tuple[list[Any], str | None]:
        self.pages += 1
        start = int(next_token or 0)
        end = min(self.count, start + limit)
        return [self.feature(i) for i in range(start, end)], (str(end) if end < self.count else None)

    def changed_since(self, owner: str, since: Any, until: Any) -> tuple[list[Any], list[Any]]:
        raise NotImplementedError("whole exports only")


def create_ranged_table(dynamodb: Any, name: str) -> None:
    """A table keyed as the service's are: ``pk`` (hash) and ``sk`` (range), both strings, on demand."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
