"""Issue 12: the README promises levels 0..z all present and the dry run counts them, but an ROI smaller than
a source pixel could come back without its coarsest levels. Every promised level is present, the delivered
tiles per zoom are the dry run's, and the estimate is within 2x of the delivered size."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Cloud
from tests.integration.test_pipeline import PENTAGON, exported_gpkg, make_task
from tests.integration.test_storage_quota import CountingWorkflow, service
from tests.support import tile_counts

Z8 = 0.00274658203125  # the sample Landsat record's own resolution


def square(x: float, y: float, side: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]],
    }


TINY = {
    "sub-pixel square": square(-77.8123, 24.6071, 0.0004),  # a seventh of a source pixel
    "one pixel": square(-77.5, 24.3, Z8),
    "sliver": {
        "type": "Polygon",
        "coordinates": [[[-78.1, 24.5], [-77.3, 24.5], [-77.3, 24.5003], [-78.1, 24.5003], [-78.1, 24.5]]],
    },
    "on a tile corner at z8": square(-78.046875, 24.609375, 0.0005),
}


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_rois_deliver_every_promised_level_as_the_dry_run_counted(
    cloud: Cloud, tmp_path: Path, name: str
) -> None:
    task = make_task(cloud, "landsat-bahamas-rgb", TINY[name], Z8, "https://receiver.example/hook")
    dry = service(cloud, 10**12, CountingWorkflow()).dry_run(task.request)
    path, size = exported_gpkg(cloud, task, tmp_path)
    counts = tile_counts(path)
    assert sorted(counts) == list(range(9)), counts  # levels 0..8, none missing
    assert counts == {int(z): n for z, n in dry.tilesPerZoom.items()}, (counts, dry.tilesPerZoom)
    print(f"{name}: estimated {dry.estimatedSize}, delivered {size}, ratio {dry.estimatedSize / size:.2f}")
    assert dry.estimatedSize / 2 <= size <= dry.estimatedSize * 2, (size, dry.estimatedSize)


VARIED = {
    "pentagon at z8": (PENTAGON, Z8),
    "square at z7": (square(-78.3, 24.1, 0.9), Z8 * 2),
    "half outside the footprint": (square(-78.9, 24.4, 0.6), Z8),
    "thin diagonal at z8": (
        {
            "type": "Polygon",
            "coordinates": [[[-78.2, 24.2], [-77.2, 25.0], [-77.25, 25.0], [-78.2, 24.26], [-78.2, 24.2]]],
        },
        Z8,
    ),
}


@pytest.mark.parametrize("name", list(VARIED))
def test_estimates_are_within_2x_of_what_is_delivered(cloud: Cloud, tmp_path: Path, name: str) -> None:
    """The README states how close estimates land; this measures it (the ratio is printed with -s)."""
    roi, res = VARIED[name]
    task = make_task(cloud, "landsat-bahamas-rgb", roi, res, "https://receiver.example/hook")
    dry = service(cloud, 10**12, CountingWorkflow()).dry_run(task.request)
    path, size = exported_gpkg(cloud, task, tmp_path)
    counts = tile_counts(path)
    # Every counted tile is delivered, transparent where the source has no data (the scene's corners).
    assert counts == {int(z): n for z, n in dry.tilesPerZoom.items()}
    print(f"{name}: estimated {dry.estimatedSize}, delivered {size}, ratio {dry.estimatedSize / size:.2f}")
    assert dry.estimatedSize / 2 <= size <= dry.estimatedSize * 2, (size, dry.estimatedSize)
