"""The HTTP edge shared by the API functions: resolver construction and error mapping."""

from geoexport.api.http import caller, json_response, make_resolver, public_base, require_scope

__all__ = ["caller", "json_response", "make_resolver", "public_base", "require_scope"]
