"""Render tiles of the WorldCRS84Quad grid straight from the source: one warp per block, no intermediate.

Each zoom level is warped from the source (its best overview for coarse levels), in blocks of up to
4 x 4 tiles handed to a thread pool; GDAL and zlib release the GIL, so the blocks run in parallel. Pixels
outside the level's region (the ROI clipped to the source footprint) and source nodata become transparent;
tiles with no visible pixel are not written.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.features import geometry_mask
from rasterio.warp import reproject
from shapely import box
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from shapely.prepared import PreparedGeometry, prep

from geoexport.errors import SourceUnreadable, UnsupportedSource
from geoexport.geometry import grid
from geoexport.packaging.gpkg import Tile
from geoexport.raster.png import encode_png
from geoexport.raster.source import gdal_env

BLOCK_TILES = 4

# rasterio creates its in-memory destination before giving it the transform we pass, and warns about it.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module=r"rasterio\.warp")


@dataclass(frozen=True)
class Level:
    zoom: int
    region: BaseGeometry  # EPSG:4326
    tiles: grid.TileRange
    #: The level's whole tile range (False: a work item's share of it, see geoexport.pipeline.fanout):
    #: only a whole level may fall back to the small-region rendering when it came out empty.
    whole: bool = True


@dataclass
class RenderStats:
    tiles_per_zoom: dict[int, int] = field(default_factory=dict)
    tile_bytes: int = 0


@dataclass(frozen=True)
class _Block:
    level: Level
    min_col: int
    min_row: int
    cols: int
    rows: int


@dataclass(frozen=True)
class SourceBands:
    """Which source bands become which output samples."""

    indexes: tuple[int, ...]  # 1 (grey) or 3 (RGB) source band indexes
    alpha: int | None  # source alpha band, if it has one
    nodata: float | None
    resolution: float  # the source's pixel size in degrees (at its centre), for choosing overviews
    overview_factors: tuple[int, ...]


def inspect_bands(path: str, resolution_deg: float) -> SourceBands:
    with rasterio.open(path) as src:
        if any(dtype != "uint8" for dtype in src.dtypes):
            raise UnsupportedSource(
                f"the source has {src.dtypes[0]} pixels; GeoPackage tile export needs 8-bit imagery"
            )
        interp = list(src.colorinterp)
        alpha = interp.index(ColorInterp.alpha) + 1 if ColorInterp.alpha in interp else None
        colour = [i + 1 for i in range(src.count) if i + 1 != alpha]
        indexes = tuple(colour[:3]) if len(colour) >= 3 else (colour[0],)
        return SourceBands(indexes, alpha, src.nodata, resolution_deg, tuple(src.overviews(1)))


def _blocks(level: Level) -> Iterator[_Block]:
    tiles = level.tiles
    for row in range(tiles.min_row, tiles.max_row + 1, BLOCK_TILES):
        for col in range(tiles.min_col, tiles.max_col + 1, BLOCK_TILES):
            cols = min(BLOCK_TILES, tiles.max_col - col + 1)
            rows = min(BLOCK_TILES, tiles.max_row - row + 1)
            block = _Block(level, col, row, cols, rows)
            if level.region.intersects(box(*_block_bounds(block))):
                yield block


def _block_bounds(block: _Block) -> grid.Bounds:
    minx, _, _, maxy = grid.tile_bounds(block.level.zoom, block.min_col, block.min_row)
    span = grid.TILE_SIZE * grid.resolution(block.level.zoom)
    return minx, maxy - block.rows * span, minx + block.cols * span, maxy


class TileRenderer:
    """Renders blocks into encoded tiles; one source handle per thread and overview level."""

    def __init__(self, path: str, bands: SourceBands, gdal_options: dict[str, str]) -> None:
        self._path = path
        self._bands = bands
        self._gdal_options = gdal_options
        self._local = threading.local()
        self._prepared: dict[int, PreparedGeometry] = {}
        #: Per zoom, the tiles the region reaches that came out with no visible pixel (source nodata there).
        self.empty: dict[int, set[tuple[int, int]]] = {}
        self._opened: list[Any] = []
        self._lock = threading.Lock()

    def _dataset(self, overview: int | None) -> Any:
        cache: dict[int | None, Any] = getattr(self._local, "datasets", None) or {}
        self._local.datasets = cache
        if overview not in cache:
            kwargs = {} if overview is None else {"overview_level": overview}
            dataset = rasterio.open(self._path, **kwargs)
            cache[overview] = dataset
            with self._lock:
                self._opened.append(dataset)
        return cache[overview]

    def close(self) -> None:
        with self._lock:
            for dataset in self._opened:
                dataset.close()
            self._opened.clear()

    def _choose(self, zoom: int) -> tuple[int | None, Resampling]:
        """gdalwarp's -ovr AUTO: the coarsest overview still at least as fine as the target."""
        target = grid.resolution(zoom)
        best: int | None = None
        for index, factor in enumerate(self._bands.overview_factors):
            if self._bands.resolution * factor <= target * (1 + 1e-6):
                best = index
        effective = self._bands.resolution * (1 if best is None else self._bands.overview_factors[best])
        resampling = Resampling.average if target > effective * 1.01 else Resampling.bilinear
        return best, resampling

    def render(self, block: _Block) -> list[Tile]:
        with gdal_env(self._gdal_options):
            try:
                return self._render(block)
            except RasterioError as error:
                raise SourceUnreadable(
                    f"the source raster's pixels cannot be read ({str(error).strip()}); the file may be "
                    "damaged: re-ingest the product or choose another record"
                ) from error

    def _warp(self, zoom: int, transform: Affine, width: int, height: int) -> npt.NDArray[np.uint8]:
        """Colour bands plus alpha (source nodata -> 0) on a grid of ``zoom``'s resolution."""
        overview, resampling = self._choose(zoom)
        src = self._dataset(overview)
        n = len(self._bands.indexes)
        out: npt.NDArray[np.uint8] = np.zeros((n + 1, height, width), dtype=np.uint8)
        source_indexes = list(self._bands.indexes)
        kwargs: dict[str, Any] = {}
        if self._bands.alpha is not None:
            source_indexes.append(self._bands.alpha)
            kwargs["src_alpha"] = len(source_indexes)
        reproject(
            source=rasterio.band(src, source_indexes),
            destination=out,
            src_nodata=None if self._bands.alpha is not None else self._bands.nodata,
            dst_transform=transform,
            dst_crs="EPSG:4326",
            dst_alpha=n + 1,
            resampling=resampling,
            num_threads=1,
            **kwargs,
        )
        return out

    def render_small(self, level: Level) -> list[Tile]:
        """A level whose region is smaller than its pixels (a small ROI at a coarse zoom).

        Warping straight to such a coarse grid is erratic (GDAL drops a source smaller than a pixel), so
        the region is warped at a zoom where it spans >= 8 pixels and averaged down, alpha-weighted, as
        overview building does; every pixel the region reaches stays visible, so each level shows it.
        """
        with gdal_env(self._gdal_options):
            try:
                return self._render_small(level)
            except RasterioError as error:
                raise SourceUnreadable(f"the source raster's pixels cannot be read ({error})") from error

    def _render_small(self, level: Level) -> list[Tile]:
        zoom, res, size = level.zoom, grid.resolution(level.zoom), grid.TILE_SIZE
        minx, miny, maxx, maxy = level.region.bounds
        col0, row0 = math.floor((minx + 180) / res), math.floor((90 - maxy) / res)
        col1, row1 = math.ceil((maxx + 180) / res), math.ceil((90 - miny) / res)
        span_px = max(min(maxx - minx, maxy - miny) / res, 1e-9)
        factor = 1 << max(1, min(16, math.ceil(math.log2(8 / span_px))))
        while factor > 2 and (col1 - col0) * (row1 - row0) * factor * factor > 4_000_000:
            factor //= 2  # a long, thin region: stay within a bounded warp
        fine = res / factor
        width, height = (col1 - col0) * factor, (row1 - row0) * factor
        transform = Affine(fine, 0.0, -180 + col0 * res, 0.0, -fine, 90 - row0 * res)
        fine_zoom = zoom + int(math.log2(factor))
        out = self._warp(min(fine_zoom, grid.MAX_ZOOM), transform, width, height).astype(np.float64)
        n = out.shape[0] - 1
        # Every fine pixel the region touches: a region smaller than one fine pixel (the warp is bounded)
        # would otherwise hold no pixel centre, and the level would come back empty.
        inside = geometry_mask(
            [mapping(level.region)],
            out_shape=(height, width),
            transform=transform,
            invert=True,
            all_touched=True,
        )
        out[n][~inside] = 0
        shape = (n + 1, row1 - row0, factor, col1 - col0, factor)
        blocks = out.reshape(shape)
        weight = blocks[n].sum(axis=(1, 3))
        coarse = np.zeros((n + 1, row1 - row0, col1 - col0), dtype=np.uint8)
        seen = weight > 0
        for band in range(n):
            summed = (blocks[band] * blocks[n]).sum(axis=(1, 3))
            coarse[band][seen] = np.round(summed[seen] / weight[seen]).astype(np.uint8)
        coarse[n][seen] = 255
        tiles: list[Tile] = []
        first = grid.tile_range(level.region.bounds, zoom)
        for row in range(first.min_row, first.max_row + 1):
            for col in range(first.min_col, first.max_col + 1):
                tile = np.zeros((n + 1, size, size), dtype=np.uint8)
                top, left = row * size, col * size  # tile origin in level pixels
                r0, r1 = max(row0, top), min(row1, top + size)
                c0, c1 = max(col0, left), min(col1, left + size)
                if r0 >= r1 or c0 >= c1:
                    continue
                tile[:, r0 - top : r1 - top, c0 - left : c1 - left] = coarse[
                    :, r0 - row0 : r1 - row0, c0 - col0 : c1 - col0
                ]
                if tile[n].any():
                    tiles.append((zoom, col, row, encode_png(tile)))
        return tiles

    def _render(self, block: _Block) -> list[Tile]:
        zoom = block.level.zoom
        res = grid.resolution(zoom)
        size = grid.TILE_SIZE
        width, height = block.cols * size, block.rows * size
        minx, _, _, maxy = _block_bounds(block)
        transform = Affine(res, 0.0, minx, 0.0, -res, maxy)
        n = len(self._bands.indexes)
        out = self._warp(zoom, transform, width, height)
        region = mapping(block.level.region)
        prepared = self._prepared_region(block.level)
        # Pixel centres inside the region stay visible (GDAL's cutline rule); None: the whole block is inside.
        inside = None
        if not prepared.contains(box(*_block_bounds(block))):
            inside = geometry_mask([region], out_shape=(height, width), transform=transform, invert=True)
        tiles: list[Tile] = []
        for j in range(block.rows):
            for i in range(block.cols):
                col, row = block.min_col + i, block.min_row + j
                if not prepared.intersects(box(*grid.tile_bounds(zoom, col, row))):
                    continue
                window = (slice(None), slice(j * size, (j + 1) * size), slice(i * size, (i + 1) * size))
                tile = out[window]
                if inside is not None:
                    tile[n][~inside[window[1:]]] = 0
                alpha = tile[n]
                if not alpha.any():
                    with self._lock:
                        self.empty.setdefault(zoom, set()).add((col, row))
                    continue
                tile[:n, alpha == 0] = 0
                pixels = tile[:n] if alpha.min() == 255 else tile
                tiles.append((zoom, col, row, encode_png(pixels)))
        return tiles

    def _prepared_region(self, level: Level) -> PreparedGeometry:
        with self._lock:
            if level.zoom not in self._prepared:
                self._prepared[level.zoom] = prep(level.region)
            return self._prepared[level.zoom]


def _transparent(bands: int) -> bytes:
    return encode_png(np.zeros((bands, grid.TILE_SIZE, grid.TILE_SIZE), dtype=np.uint8))


def render(
    path: str,
    bands: SourceBands,
    levels: Sequence[Level],
    sink: Callable[[list[Tile]], None],
    threads: int,
    gdal_options: dict[str, str],
    progress: Callable[[float], None] | None = None,
) -> RenderStats:
    """Render every level into ``sink`` (called on this thread only); returns tile counts per zoom."""
    blocks = [block for level in levels for block in _blocks(level)]
    stats = RenderStats(tiles_per_zoom={level.zoom: 0 for level in levels})
    renderer = TileRenderer(path, bands, gdal_options)
    workers = max(1, threads)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render") as pool:
            # At most two blocks per worker in flight: a finished block's tiles go to the sink and are
            # dropped, so memory stays bounded whatever the number of tiles (keeping every future held
            # every encoded tile until the end: ~0.9 x the output).
            pending = iter(blocks)
            running = {
                pool.submit(renderer.render, block) for block in itertools.islice(pending, 2 * workers)
            }
            done = 0
            try:
                while running:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        tiles = future.result()
                        for zoom, _, _, data in tiles:
                            stats.tiles_per_zoom[zoom] += 1
                            stats.tile_bytes += len(data)
                        sink(tiles)
                        del tiles
                        done += 1
                        if progress is not None:
                            progress(done / len(blocks))
                        block = next(pending, None)
                        if block is not None:
                            running.add(pool.submit(renderer.render, block))
            except BaseException:
                for future in running:
                    future.cancel()
                raise
        for level in levels:
            drawn: set[tuple[int, int]] = set()
            if level.whole and stats.tiles_per_zoom[level.zoom] == 0:  # small regions at coarse zooms
                tiles = renderer.render_small(level)
                drawn = {(col, row) for _, col, row, _ in tiles}
                for zoom, _, _, data in tiles:
                    stats.tiles_per_zoom[zoom] += 1
                    stats.tile_bytes += len(data)
                sink(tiles)
            # Tiles the region reaches where the source has no data (a rotated scene's corners) are
            # delivered transparent: every tile the dry run counted is in the package.
            blank = sorted(renderer.empty.get(level.zoom, set()) - drawn)
            if blank:
                data = _transparent(len(bands.indexes) + 1)
                stats.tiles_per_zoom[level.zoom] += len(blank)
                stats.tile_bytes += len(data) * len(blank)
                sink([(level.zoom, col, row, data) for col, row in blank])
    finally:
        renderer.close()
    return stats


def sample_costs(
    path: str,
    bands: SourceBands,
    footprint: BaseGeometry,
    zooms: Sequence[int],
    gdal_options: dict[str, str],
    per_zoom: int = 6,
) -> dict[int, tuple[float, float]]:
    """Measured (bytes per tile, seconds per tile) at each zoom, from tiles spread over the footprint.

    The API's size and time estimates multiply exact tile counts by these, so they reflect how well this
    source compresses at that zoom rather than a flat constant.
    """
    renderer = TileRenderer(path, bands, gdal_options)
    costs: dict[int, tuple[float, float]] = {}
    try:
        for zoom in zooms:
            tiles = grid.tile_range(footprint.bounds, zoom)
            level = Level(zoom, footprint, tiles)
            candidates = (
                [
                    (col, row)
                    for row in range(tiles.min_row, tiles.max_row + 1)
                    for col in range(tiles.min_col, tiles.max_col + 1)
                    if footprint.intersects(box(*grid.tile_bounds(zoom, col, row)))
                ]
                if tiles.count <= 20_000
                else [((tiles.min_col + tiles.max_col) // 2, (tiles.min_row + tiles.max_row) // 2)]
            )
            step = max(1, len(candidates) // per_zoom)
            picked = candidates[::step][:per_zoom]
            sizes: list[int] = []
            started = time.perf_counter()
            for col, row in picked:
                sizes.extend(len(t[3]) for t in renderer.render(_Block(level, col, row, 1, 1)))
            elapsed = time.perf_counter() - started
            if sizes:
                costs[zoom] = (sum(sizes) / len(sizes), elapsed / max(1, len(picked)))
    finally:
        renderer.close()
    return costs
