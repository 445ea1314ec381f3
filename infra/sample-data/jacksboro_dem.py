"""Rebuild jacksboro-dem.tif from matplotlib's sample data (the recipe named in PROVENANCE.md).

Run: ``python infra/sample-data/jacksboro_dem.py path/to/jacksboro_fault_dem.npz`` (the file ships in the
matplotlib wheel under ``matplotlib/mpl-data/sample_data/``). The npz holds int16 heights in metres and
the grid: ``dx``/``dy`` (3 arc-seconds), ``xmin``/``xmax`` and the two latitudes (its ``ymin`` is the
northern edge: row 0 is north, as matplotlib's hill-shading example draws it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

NODATA = -32768


def main(npz: str, target: Path) -> None:
    data = np.load(npz)
    heights = data["elevation"].astype("int16")
    north = max(float(data["ymin"]), float(data["ymax"]))
    transform = from_origin(float(data["xmin"]), north, float(data["dx"]), float(data["dy"]))
    profile = {
        "driver": "GTiff",
        "width": heights.shape[1],
        "height": heights.shape[0],
        "count": 1,
        "dtype": "int16",
        "crs": "EPSG:4326",
        "transform": transform,
        "nodata": NODATA,
        "compress": "deflate",
        "predictor": 2,
        "tiled": True,
    }
    with rasterio.open(target, "w", **profile) as out:
        out.write(heights, 1)
        out.update_tags(1, UNITTYPE="metre")
        out.units = ("metre",)
        out.set_band_description(1, "height above the vertical datum (USGS, metres)")


if __name__ == "__main__":
    main(sys.argv[1], Path(__file__).with_name("jacksboro-dem.tif"))
