"""geoexport: clip a map product to a region, package it, hand back a presigned link and a callback.

Importing the package (or any module the API functions use) must stay light: no numpy, rasterio or GDAL.
Only ``geoexport.raster`` and the clip/package pipeline steps pull those in.
"""

__version__ = "0.1.0"
