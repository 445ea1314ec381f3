"""Raster work (rasterio/GDAL/numpy). Only the clip and package steps and the catalog seeding import this."""
