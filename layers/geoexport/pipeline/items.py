"""How a big GeoPackage export is cut into work items, in pure Python (the API's estimate counts them too).

An export with more than ``fanout_tiles`` tiles fans out. Levels with at most ``item_tiles`` tiles go whole,
packed in zoom order into items of at most ``item_tiles``; a bigger level is cut into ``ceil(tiles /
item_tiles)`` bands of whole render blocks (:func:`geoexport.pipeline.fanout.split` places the cuts), so one
item renders about ``item_tiles`` tiles whatever the export's size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel


@dataclass(frozen=True)
class FanOut:
    """When and how exports fan out (template parameters FanOut*)."""

    tiles: int = 20_000  # exports with more tiles fan out
    item_tiles: int = 10_000  # tiles one work item renders, about
    concurrency: int = 10  # the Distributed Map's MaxConcurrency
    tolerated_percent: float = 5.0  # failed items the merge may redo itself


class Piece(BaseModel):
    """Tiles of one level an item renders; ``whole``: the level's whole range (small-region fallback on)."""

    zoom: int
    tiles: list[int]  # min_col, min_row, max_col, max_row
    whole: bool


class WorkItem(BaseModel):
    index: int
    pieces: list[Piece]
    tiles: int  # tiles of the pieces that meet the region (what the item renders, at most)


def bands(tiles: int, item_tiles: int) -> int:
    """Items a level of ``tiles`` tiles is cut into (1: it goes whole, possibly with other small levels)."""
    return max(1, math.ceil(tiles / item_tiles))


def count_items(tiles_per_zoom: Mapping[int, int], fanout_tiles: int, item_tiles: int) -> int:
    """Work items an export with these tile counts runs (0: it stays on the single path)."""
    if sum(tiles_per_zoom.values()) <= fanout_tiles:
        return 0
    items, open_tiles = 0, None
    for zoom in sorted(tiles_per_zoom):
        tiles = tiles_per_zoom[zoom]
        if tiles > item_tiles:
            items += bands(tiles, item_tiles)
        elif open_tiles is not None and open_tiles + tiles <= item_tiles:
            open_tiles += tiles
        else:
            items += 1
            open_tiles = tiles
    return items
