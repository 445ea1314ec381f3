"""The HTTP edge shared by the API functions: resolver construction and error mapping."""

from geoexport.api.http import caller, json_response, make_resolver, require_scope

__all__ = ["caller", "json_response", "make_resolver", "require_scope"]
