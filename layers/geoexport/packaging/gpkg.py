"""A GeoPackage 1.2 tile container in the WorldCRS84Quad grid, written with sqlite3.

The renderer produces encoded tiles per zoom; this module owns the container: the required tables, the
EPSG:4326 definition, the tile matrix set covering the whole world and one tile matrix row per zoom 0..z.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from geoexport.geometry import grid

APPLICATION_ID = 0x47504B47  # "GPKG"
USER_VERSION = 10200  # GeoPackage 1.2

WGS84_WKT = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],'
    'UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],'
    'AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)

_SCHEMA = """
CREATE TABLE gpkg_spatial_ref_sys (
  srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL,
  organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE gpkg_contents (
  table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
  description TEXT DEFAULT '', last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
  min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER,
  CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE gpkg_geometry_columns (
  table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
  srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL,
  CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),
  CONSTRAINT uk_gc_table_name UNIQUE (table_name),
  CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE gpkg_tile_matrix_set (
  table_name TEXT NOT NULL PRIMARY KEY, srs_id INTEGER NOT NULL,
  min_x DOUBLE NOT NULL, min_y DOUBLE NOT NULL, max_x DOUBLE NOT NULL, max_y DOUBLE NOT NULL,
  CONSTRAINT fk_gtms_table_name FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name),
  CONSTRAINT fk_gtms_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE gpkg_tile_matrix (
  table_name TEXT NOT NULL, zoom_level INTEGER NOT NULL, matrix_width INTEGER NOT NULL,
  matrix_height INTEGER NOT NULL, tile_width INTEGER NOT NULL, tile_height INTEGER NOT NULL,
  pixel_x_size DOUBLE NOT NULL, pixel_y_size DOUBLE NOT NULL,
  CONSTRAINT pk_ttm PRIMARY KEY (table_name, zoom_level),
  CONSTRAINT fk_tmm_table_name FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name));
"""

_TILES_TABLE = """
CREATE TABLE "{table}" (
  id INTEGER PRIMARY KEY AUTOINCREMENT, zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL,
  tile_row INTEGER NOT NULL, tile_data BLOB NOT NULL, UNIQUE (zoom_level, tile_column, tile_row));
"""

Tile = tuple[int, int, int, bytes]  # zoom, column, row, encoded image


def snap_to_pixels(bounds: tuple[float, float, float, float], zoom: int) -> tuple[float, float, float, float]:
    """Grow bounds outward to whole pixels of ``zoom``.

    GDAL takes gpkg_contents' bounds as the dataset's extent: off the pixel grid, every read would be
    resampled by a fraction of a pixel.
    """
    res = grid.resolution(zoom)
    minx, miny, maxx, maxy = bounds
    return (
        -180.0 + math.floor((minx + 180.0) / res + 1e-9) * res,
        90.0 - math.ceil((90.0 - miny) / res - 1e-9) * res,
        -180.0 + math.ceil((maxx + 180.0) / res - 1e-9) * res,
        90.0 - math.floor((90.0 - maxy) / res + 1e-9) * res,
    )


class GeoPackageTiles:
    """Context manager: create the file, add tiles, and on a clean exit commit it."""

    def __init__(
        self,
        path: Path,
        table: str,
        max_zoom: int,
        content_bounds: tuple[float, float, float, float],
        identifier: str,
        description: str = "",
    ) -> None:
        if not table.replace("_", "").isalnum():
            raise ValueError("table name must be alphanumeric")
        self.path = path
        self.table = table
        self.max_zoom = max_zoom
        self.bounds = snap_to_pixels(content_bounds, max_zoom)
        self.identifier = identifier
        self.description = description
        self.count = 0
        self._db: sqlite3.Connection | None = None

    def __enter__(self) -> GeoPackageTiles:
        self.path.unlink(missing_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        db.execute(f"PRAGMA user_version = {USER_VERSION}")
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(_TILES_TABLE.format(table=self.table))
        db.executemany(
            "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    "Undefined cartesian SRS",
                    -1,
                    "NONE",
                    -1,
                    "undefined",
                    "undefined cartesian coordinate reference system",
                ),
                (
                    "Undefined geographic SRS",
                    0,
                    "NONE",
                    0,
                    "undefined",
                    "undefined geographic coordinate reference system",
                ),
                (
                    "WGS 84 geodetic",
                    4326,
                    "EPSG",
                    4326,
                    WGS84_WKT,
                    "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid",
                ),
            ],
        )
        minx, miny, maxx, maxy = self.bounds
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        db.execute(
            "INSERT INTO gpkg_contents VALUES (?, 'tiles', ?, ?, ?, ?, ?, ?, ?, 4326)",
            (self.table, self.identifier, self.description, stamp, minx, miny, maxx, maxy),
        )
        db.execute(
            "INSERT INTO gpkg_tile_matrix_set VALUES (?, 4326, -180.0, -90.0, 180.0, 90.0)", (self.table,)
        )
        rows = []
        for zoom in range(self.max_zoom + 1):
            cols, rows_n = grid.matrix_size(zoom)
            res = grid.resolution(zoom)
            rows.append((self.table, zoom, cols, rows_n, grid.TILE_SIZE, grid.TILE_SIZE, res, res))
        db.executemany("INSERT INTO gpkg_tile_matrix VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._db = db
        return self

    def add(self, tiles: Iterable[Tile]) -> None:
        assert self._db is not None, "use GeoPackageTiles as a context manager"
        batch = list(tiles)
        self._db.executemany(
            f'INSERT OR REPLACE INTO "{self.table}" (zoom_level, tile_column, tile_row, tile_data) '
            "VALUES (?, ?, ?, ?)",
            batch,
        )
        self.count += len(batch)

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._db is not None
        if kind is None:
            self._db.execute("COMMIT")
            self._db.execute("PRAGMA journal_mode = DELETE")
        else:
            self._db.execute("ROLLBACK")
        self._db.close()
        self._db = None
        if kind is not None:
            self.path.unlink(missing_ok=True)
