"""Opening sources (local or S3 through GDAL), describing them for the catalog, converting them to COG."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
import rasterio.shutil
import shapely
from rasterio.errors import RasterioError
from rasterio.session import AWSSession, DummySession, Session
from rasterio.warp import transform as transform_points

from geoexport import aws
from geoexport.errors import SourceUnreadable


def gdal_path(uri: str) -> str:
    """s3://bucket/key -> /vsis3/bucket/key (GDAL's S3 handler); local paths pass through."""
    if uri.startswith("s3://"):
        return "/vsis3/" + uri.removeprefix("s3://")
    return uri


def _environment_session(*args: Any, **kwargs: Any) -> Session:
    """``rasterio.session.Session.from_environ`` over the execution environment's shared boto3 session.

    Every ``rasterio.Env()`` made without a session, while AWS credentials are in the environment (always,
    on Lambda), builds a boto3 session of its own (~6 ms holding the GIL), and rasterio >= 1.4.1 makes such
    Envs inside its own calls: ``reproject`` to an array makes three (rasterio#3331, open in 1.5.1). That
    was over half the GIL time of a fan-out's render workers. The credentials are the same ones."""
    if args or kwargs:
        return _from_environ(*args, **kwargs)
    session = AWSSession(aws.session())
    try:
        session.credentials  # noqa: B018 (as rasterio does: expired credentials raise here)
    except RuntimeError:
        return DummySession()
    return session


# rasterio's own, kept once (a second import of this module must not wrap the replacement).
_from_environ = getattr(Session.from_environ, "rasterio_original", Session.from_environ)
_environment_session.rasterio_original = _from_environ  # type: ignore[attr-defined]
Session.from_environ = staticmethod(_environment_session)


@contextmanager
def gdal_env(options: dict[str, str]) -> Iterator[None]:
    """GDAL settings for one thread: S3 endpoint and no needless directory listings on open."""
    with rasterio.Env(
        GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR",
        CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".tif,.tiff",
        GDAL_HTTP_MAX_RETRY="3",
        GDAL_HTTP_RETRY_DELAY="0.5",
        VSI_CACHE="TRUE",
        GDAL_CACHEMAX=256,  # MB; the default (5 % of RAM) costs memory, not speed, for block-wise warps
        **options,
    ):
        yield


@dataclass(frozen=True)
class SourceInfo:
    crs: str
    bands: int
    dtype: str
    nodata: float | None
    width: int
    height: int
    footprint: dict[str, Any]  # GeoJSON Polygon, EPSG:4326
    resolution_deg: float  # the finest detail the source holds, in degrees per pixel


def describe(path: str, edge_points: int = 16) -> SourceInfo:
    """Footprint (the raster's outline densified and transformed to EPSG:4326) and native resolution."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise SourceUnreadable(f"{path} has no coordinate reference system")
            left, bottom, right, top = src.bounds
            xs: list[float] = []
            ys: list[float] = []
            for i in range(edge_points):  # counter-clockwise: bottom, right, top, left edges
                t = i / edge_points
                xs += [left + (right - left) * t]
                ys += [bottom]
            for i in range(edge_points):
                t = i / edge_points
                xs += [right]
                ys += [bottom + (top - bottom) * t]
            for i in range(edge_points):
                t = i / edge_points
                xs += [right - (right - left) * t]
                ys += [top]
            for i in range(edge_points):
                t = i / edge_points
                xs += [left]
                ys += [top - (top - bottom) * t]
            lons, lats = transform_points(src.crs, "EPSG:4326", xs, ys)
            outline = shapely.Polygon(zip(lons, lats, strict=True)).simplify(0)  # drop collinear points
            ring = [[round(x, 9), round(y, 9)] for x, y in outline.exterior.coords]
            # Size of one pixel at the centre, in degrees: the finer of its two sides.
            cx, cy = src.transform @ (src.width / 2, src.height / 2)
            px, py = src.res
            clon, clat = transform_points(src.crs, "EPSG:4326", [cx, cx + px, cx], [cy, cy, cy - py])
            dx = math.hypot(clon[1] - clon[0], clat[1] - clat[0])
            dy = math.hypot(clon[2] - clon[0], clat[2] - clat[0])
            crs = src.crs.to_string()
            return SourceInfo(
                crs=crs,
                bands=src.count,
                dtype=src.dtypes[0],
                nodata=src.nodata,
                width=src.width,
                height=src.height,
                footprint={"type": "Polygon", "coordinates": [ring]},
                resolution_deg=min(dx, dy),
            )
    except RasterioError as error:
        raise SourceUnreadable(f"{path} cannot be opened: {error}") from error


def to_cog(source: Path, target: Path) -> None:
    """Write ``source`` as a Cloud Optimized GeoTIFF with internal overviews (what the catalog serves)."""
    with rasterio.open(source) as src:
        rasterio.shutil.copy(
            src,
            target,
            driver="COG",
            COMPRESS="DEFLATE",
            BLOCKSIZE="256",
            OVERVIEWS="AUTO",
            RESAMPLING="AVERAGE",
            NUM_THREADS="ALL_CPUS",
        )
