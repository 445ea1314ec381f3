"""Geometry that the light API functions can use: pure Python, no numpy/shapely import."""
