"""The HTTP edge shared by the API functions: resolver construction and error mapping."""

from geoexport.api.http import caller, json_response, make_resolver

__all__ = ["caller", "json_response", "make_resolver"]
