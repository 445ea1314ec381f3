"""The WorldCRS84Quad grid and the zoom rule."""

import pytest

from geoexport.geometry import grid


def test_zoom0_is_two_by_one_tiles_of_0_703125_degrees() -> None:
    assert grid.matrix_size(0) == (2, 1)
    assert grid.resolution(0) == 0.703125
    assert grid.tile_bounds(0, 0, 0) == (-180.0, -90.0, 0.0, 90.0)
    assert grid.tile_bounds(0, 1, 0) == (0.0, -90.0, 180.0, 90.0)


@pytest.mark.parametrize("zoom", range(grid.MAX_ZOOM + 1))
def test_exact_level_resolution_maps_to_that_level(zoom: int) -> None:
    assert grid.zoom_for_resolution(grid.resolution(zoom)) == zoom


@pytest.mark.parametrize(
    ("res", "zoom"),
    [
        (0.067, 3),  # seed 000's example: 0.0879 at z3 is the finest not finer than 0.067
        (0.0879, 2),  # a hair coarser than z3's 0.08789 -> z2
        (0.703125 * 0.75, 0),
        (0.0027, 8),
        (3.35e-7, 21),
    ],
)
def test_largest_zoom_not_finer_than_request(res: float, zoom: int) -> None:
    chosen = grid.zoom_for_resolution(res)
    assert chosen == zoom
    assert grid.resolution(chosen) >= res * (1 - 1e-9)
    if chosen < grid.MAX_ZOOM:
        assert grid.resolution(chosen + 1) < res


def test_tile_range_covers_bounds_without_spilling() -> None:
    tiles = grid.tile_range((-78.96, 23.56, -76.57, 25.55), 8)
    for col in (tiles.min_col, tiles.max_col):
        for row in (tiles.min_row, tiles.max_row):
            minx, miny, maxx, maxy = grid.tile_bounds(8, col, row)
            assert maxx > -78.96 and minx < -76.57 and maxy > 23.56 and miny < 25.55
    # A bounds exactly on tile edges touches no neighbour.
    edge = grid.tile_bounds(5, 10, 7)
    assert grid.tile_range(edge, 5).count == 1


def test_rejects_non_positive_resolution() -> None:
    with pytest.raises(ValueError, match="positive"):
        grid.zoom_for_resolution(0)
