"""The HTTP edge shared by the API functions: resolver construction and error mapping."""

from geoexport.api.http import json_response, make_resolver

__all__ = ["json_response", "make_resolver"]
