"""Big GeoPackage exports across many invocations: split the plan into work items, render each into a part
under an idempotent key, merge the parts into the one GeoPackage.

The state machine's Distributed Map reads the items from S3 and runs RenderPart for each (a retried item
overwrites its own part); Merge copies every part into the GeoPackage, one part on disk at a time. An item
is a rectangle of whole render blocks of one level (or a few small levels whole), so each tile is warped
from exactly the same block as on the single path: the tiles are byte-identical.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geoexport.errors import PartsFailed, UnprocessableRequest
from geoexport.geometry import grid
from geoexport.packaging.gpkg import GeoPackageTiles
from geoexport.pipeline import items as counting
from geoexport.pipeline.items import FanOut, Piece, WorkItem
from geoexport.pipeline.plan import ExportPlan, LevelPlan, PlanFormat, scratch_prefix

BLOCK = 4  # tiles per side of a render block (geoexport.raster.render.BLOCK_TILES)


class ItemWriter(Protocol):
    def put_json(self, key: str, document: Any) -> None: ...


class Store(ItemWriter, Protocol):
    def get_json(self, key: str) -> Any: ...
    def head(self, key: str) -> dict[str, Any] | None: ...
    def download(self, key: str, path: Path) -> None: ...


#: Clip's answer for an export that does not fan out (the state machine reads every key).
SINGLE_PATH: dict[str, Any] = {"items": 0, "itemsKey": None, "concurrency": 0}


def container(plan: ExportPlan, target: Path, identifier: str | None = None) -> GeoPackageTiles:
    """The export's tile GeoPackage (or a part of it), as the plan describes it."""
    return GeoPackageTiles(
        target,
        table="tiles",
        max_zoom=plan.maxZoom,
        content_bounds=tuple(plan.bounds),  # type: ignore[arg-type]
        identifier=identifier or plan.fileStem,
        description=plan.description[:500],
    )


def items_key(task_id: str) -> str:
    return f"{scratch_prefix(task_id)}items.json"


def part_key(task_id: str, index: int) -> str:
    return f"{scratch_prefix(task_id)}parts/{index:05d}.gpkg"


def _row_counts(level: LevelPlan, region: BaseGeometry, col_lo: int, col_hi: int) -> list[tuple[int, int]]:
    """(first row, tiles meeting the region) of each block row of the level, within columns lo..hi."""
    from geoexport.pipeline.clip import count_tiles

    _, min_row, _, max_row = level.tiles
    return [
        (
            row,
            count_tiles(
                region, grid.TileRange(level.zoom, col_lo, row, col_hi, min(max_row, row + BLOCK - 1))
            ),
        )
        for row in range(min_row, max_row + 1, BLOCK)
    ]


def _bands(level: LevelPlan, item_tiles: int) -> Iterator[tuple[list[int], int]]:
    """Rectangles of whole blocks cutting a big level into about ``ceil(tiles / item_tiles)`` items, with
    about as many tiles each: bands of block rows, and column chunks too when the level is wide and short."""
    wanted = counting.bands(level.tileCount, item_tiles)
    min_col, min_row, max_col, max_row = level.tiles
    block_rows = math.ceil((max_row - min_row + 1) / BLOCK)
    block_cols = math.ceil((max_col - min_col + 1) / BLOCK)
    chunks = min(block_cols, math.ceil(wanted / block_rows))
    chunk_cols = math.ceil(block_cols / chunks) * BLOCK
    cuts = math.ceil(wanted / chunks)  # bands per column chunk
    region = shape(level.region)  # parsed (and prepared by count_tiles) once for every chunk
    for col_lo in range(min_col, max_col + 1, chunk_cols):
        col_hi = min(max_col, col_lo + chunk_cols - 1)
        counts = _row_counts(level, region, col_lo, col_hi)
        total = sum(count for _, count in counts)
        start, held, done, band = min_row, 0, 0, 0
        for row, count in counts:
            held += count
            done += count
            end = min(max_row, row + BLOCK - 1)
            if end == max_row or (band < cuts - 1 and done >= total * (band + 1) / cuts):
                if held:
                    yield [col_lo, start, col_hi, end], held
                band += 1
                start, held = end + 1, 0


def split(plan: ExportPlan, fanout_tiles: int, item_tiles: int) -> list[WorkItem]:
    """The plan's work items ([] when the export is small enough for the single path)."""
    per_zoom = {level.zoom: level.tileCount for level in plan.levels}
    if counting.count_items(per_zoom, fanout_tiles, item_tiles) == 0:
        return []
    found: list[WorkItem] = []
    group: WorkItem | None = None
    for level in plan.levels:
        if level.tileCount > item_tiles:
            for tiles, count in _bands(level, item_tiles):
                found.append(
                    WorkItem(index=0, pieces=[Piece(zoom=level.zoom, tiles=tiles, whole=False)], tiles=count)
                )
            continue
        piece = Piece(zoom=level.zoom, tiles=level.tiles, whole=True)
        if group is not None and group.tiles + level.tileCount <= item_tiles:
            group.pieces.append(piece)
            group.tiles += level.tileCount
        else:
            group = WorkItem(index=0, pieces=[piece], tiles=level.tileCount)
            found.append(group)
    return [item.model_copy(update={"index": index}) for index, item in enumerate(found)]


def plan_items(plan: ExportPlan, scratch: ItemWriter, limits: FanOut) -> dict[str, Any]:
    """Write the plan's work items for the Distributed Map's ItemReader; what the state machine needs to
    run them ({"items": 0} keeps the export on the single path)."""
    # Heights are tiled by GDAL in one pass (see geoexport.raster.dem): a DEM export is not split.
    tiled = plan.format is PlanFormat.GPKG and plan.heights is None
    work = split(plan, limits.tiles, limits.item_tiles) if tiled else []
    if not work:
        return SINGLE_PATH
    key = items_key(plan.taskId)
    scratch.put_json(key, [item.model_dump(mode="json") for item in work])
    return {"items": len(work), "itemsKey": key, "concurrency": limits.concurrency}


def render_part(
    plan: ExportPlan,
    item: WorkItem,
    source: str,
    target: Path,
    threads: int,
    gdal_options: dict[str, str],
) -> int:
    """Render one item's tiles into a part file (a small GeoPackage); returns the tiles written."""
    from geoexport.raster.render import Level, inspect_bands, render
    from geoexport.raster.source import gdal_env

    regions = {level.zoom: shape(level.region) for level in plan.levels}
    levels = [
        Level(piece.zoom, regions[piece.zoom], grid.TileRange(piece.zoom, *piece.tiles), piece.whole)
        for piece in item.pieces
    ]
    with gdal_env(gdal_options):
        bands = inspect_bands(source, plan.sourceResolutionDeg)
    with container(plan, target, f"{plan.fileStem}_part{item.index}") as part:
        render(source, bands, levels, part.add, threads, gdal_options)
        return part.count


def tolerated(total: int, percent: float) -> int:
    """Failed items the merge may redo itself (the rest fail the export)."""
    return math.floor(total * percent / 100)


def merge(
    plan: ExportPlan,
    scratch: Store,
    target: Path,
    render_missing: Callable[[WorkItem, Path], int],
    tolerated_percent: float,
) -> dict[int, int]:
    """Copy every part into the GeoPackage at ``target``; returns tiles per zoom.

    Items whose part is missing (the Map caught their failure) are rendered here, up to the tolerated
    share; more than that fails the export with the reason one of them fails again with (or, if it
    renders now, with how many failed). One part is on disk at a time."""
    work = [WorkItem.model_validate(entry) for entry in scratch.get_json(items_key(plan.taskId))]
    missing = {item.index for item in work if scratch.head(part_key(plan.taskId, item.index)) is None}
    allowed = tolerated(len(work), tolerated_percent)
    if len(missing) > allowed:
        # Why did they fail? Render one of them here: a failure that is the source's or the request's
        # (unreadable pixels, an unsupported source) is raised with its own reason, which a user can act
        # on; only if this one renders does the export fail for the count.
        first = next(item for item in work if item.index in missing)
        with tempfile.TemporaryDirectory(prefix="geoexport-part-", dir=target.parent) as tmp:
            render_missing(first, Path(tmp) / "probe.gpkg")
        raise PartsFailed(
            f"{len(missing)} of the export's {len(work)} work items failed after their retries (at most "
            f"{allowed} may be redone by the merge); request the export again, or a smaller ROI"
        )
    per_zoom = {level.zoom: 0 for level in plan.levels}
    with (
        tempfile.TemporaryDirectory(prefix="geoexport-part-", dir=target.parent) as tmp,
        container(plan, target) as gpkg,
    ):
        for item in work:
            path = Path(tmp) / f"{item.index}.gpkg"
            if item.index in missing:
                render_missing(item, path)
            else:
                scratch.download(part_key(plan.taskId, item.index), path)
            for zoom, count in copy_tiles(path, gpkg).items():
                per_zoom[zoom] = per_zoom.get(zoom, 0) + count
            path.unlink()
        if gpkg.count == 0:
            raise UnprocessableRequest("the ROI covers only nodata pixels of the source; nothing to export")
    return per_zoom


COPY_ROWS = 256  # tiles read from a part per insert (bounded memory whatever the part's size)


def copy_tiles(part: Path, gpkg: GeoPackageTiles) -> dict[int, int]:
    """Stream a part's tiles into the GeoPackage; returns tiles per zoom."""
    per_zoom: dict[int, int] = {}
    source = sqlite3.connect(f"file:{part}?mode=ro", uri=True)
    try:
        rows = source.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles")
        while batch := rows.fetchmany(COPY_ROWS):
            gpkg.add(batch)
            for zoom, *_ in batch:
                per_zoom[zoom] = per_zoom.get(zoom, 0) + 1
    finally:
        source.close()
    return per_zoom
