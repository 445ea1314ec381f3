"""Domain errors become HTTP responses here, and only here (by exception type, never by message).

Every error body has the same shape: ``{"message": ..., "errors": [{"field": ..., "reason": ...}]}``.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from geoexport.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    GeoexportError,
    InsufficientStorage,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ServiceUnavailable,
    StaleTransition,
    TooManyAttempts,
    TooManyExports,
    TransientError,
    Unauthorized,
    UnprocessableRequest,
)

logger = Logger(child=True)

STATUS_BY_ERROR: dict[type[GeoexportError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    PayloadTooLarge: 413,
    StaleTransition: 409,
    Conflict: 409,
    PreconditionFailed: 412,
    UnprocessableRequest: 422,
    InsufficientStorage: 507,
    TooManyExports: 429,
    TooManyAttempts: 429,
    ServiceUnavailable: 503,
    TransientError: 503,  # AWS throttled or dropped a call: the same request may succeed in a moment
}

_GEOMETRY_TAGS = {"Polygon", "MultiPolygon", "FeatureCollection", "Feature", "country", "wkt"}  # union tags


def status_for(error: GeoexportError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def public_base(event: dict[str, Any], suffix: str = "") -> str:
    """The absolute URL of the API's root as the caller reached it, plus ``suffix``: scheme and host from
    the request's headers, and whatever API Gateway put before the resource path (the stage, a custom
    domain's base path, an emulator's prefix), read off ``requestContext.path``. For links in answers
    (OGC API - Features) that clients follow."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    host = headers.get("host") or "localhost"
    scheme = headers.get("x-forwarded-proto") or ("https" if host.endswith("amazonaws.com") else "http")
    path = event.get("path") or "/"
    full = (event.get("requestContext") or {}).get("path") or path
    prefix = full[: -len(path)] if full.endswith(path) and len(full) > len(path) else ""
    return f"{scheme}://{host}{prefix}{suffix}"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    if isinstance(body, BaseModel):
        text = body.model_dump_json()
    else:
        text = json.dumps(body, default=str)
    return Response(status_code=status, content_type="application/json", body=text, headers=headers)


def error_body(message: str, problems: list[FieldProblem]) -> dict[str, Any]:
    return {"message": message, "errors": [problem.as_dict() for problem in problems]}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'ROI', 'features', 0, 'geometry', 'Polygon', 'coordinates')

    becomes ROI.features[0].geometry.coordinates (the geometry-type tag adds nothing for a user).
    """
    path = ""
    for part in loc:
        if part in ("body", "query", "path") and path == "":
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _GEOMETRY_TAGS:
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def problems_from_pydantic(errors: list[Any]) -> list[FieldProblem]:
    problems = []
    for error in errors:
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        field = field_path(error.get("loc", ()))
        if error.get("type") == "json_invalid":  # its loc holds a character offset, not a field
            field = "body"
            reason = f"malformed JSON: {error.get('ctx', {}).get('error', reason)}"
        problems.append(FieldProblem(field, reason))
    return problems


JSON_TYPES = ("application/json", "text/json")
#: How deep a JSON body may nest: the parser's own bound (Python's recursion limit, 1,000), stated.
MAX_JSON_DEPTH = 1000


def _non_json_media(app: APIGatewayRestResolver) -> str | None:
    declared = (app.current_event.headers or {}).get("content-type") or ""
    media = declared.split(";")[0].strip().lower()
    return media if media and not (media in JSON_TYPES or media.endswith("+json")) else None


def require_scope(app: APIGatewayRestResolver, scope: str) -> None:
    """403 unless the caller's token carries ``scope`` (the authorizer's context lists them, space-separated;
    a Cognito authorizer's claims carry ``scope`` the same way)."""
    context = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    granted = str(context.get("scope") or (context.get("claims") or {}).get("scope") or "").split()
    if scope not in granted:
        raise Forbidden(
            f"this needs the {scope} scope", [FieldProblem("Authorization", f"the token lacks {scope}")]
        )


def caller(app: APIGatewayRestResolver) -> str:
    """The authenticated client: owner of what it creates.

    The Lambda authorizer puts ``sub`` in its context; a Cognito user pool authorizer (the seam: swap the
    Api's authorizer in template.yaml) puts the token's claims under ``claims``. Both are read here, so no
    handler changes with the authorizer.
    """
    context = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    claims = context.get("claims") or {}
    sub = context.get("sub") or claims.get("sub") or context.get("principalId")
    if not sub:
        raise Unauthorized(
            "no authenticated caller", [FieldProblem("Authorization", "a bearer token is required")]
        )
    return str(sub)


def _as_json_media(event: dict[str, Any]) -> dict[str, Any]:
    """``application/<x>+json`` (RFC 7396's merge-patch+json, geo+json) is JSON: powertools' validation
    parses only ``application/json`` bodies, so such a request is handed to it under that name."""
    for field in ("headers", "multiValueHeaders"):
        for name, value in (event.get(field) or {}).items():
            if name.lower() != "content-type":
                continue
            values = value if isinstance(value, list) else [value]
            media = str(values[-1]).split(";")[0].strip().lower()
            if media.startswith("application/") and media.endswith("+json"):
                json_type = "application/json"
                replaced = [json_type] if isinstance(value, list) else json_type
                event = {**event, field: {**event[field], name: replaced}}
    return event


def _media_of(event: dict[str, Any]) -> str:
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    return str(headers.get("content-type") or "").split(";")[0].strip().lower()


class Resolver(APIGatewayRestResolver):
    """Bodies are JSON: ``application/<x>+json`` is taken as JSON, any other media type with a body is a
    415 (as the OpenAPI document says) before routing, and unknown routes answer in the error shape."""

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        event = _as_json_media(dict(event))
        media = _media_of(event)
        if event.get("body") and media and media not in JSON_TYPES:
            problem = FieldProblem("Content-Type", f"{media} is not accepted; send application/json")
            text = json.dumps(error_body("unsupported media type", [problem]))
            return {
                "statusCode": 415,
                "headers": {"Content-Type": "application/json"},
                "multiValueHeaders": {"Content-Type": ["application/json"]},
                "body": text,
                "isBase64Encoded": False,
            }
        return super().resolve(event, context)


def make_resolver() -> APIGatewayRestResolver:
    """A REST (v1 proxy) resolver with request validation and our error mapping installed."""
    app = Resolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def _request_invalid(error: RequestValidationError) -> Response[str]:
        problems = problems_from_pydantic(list(error.errors()))
        return json_response(400, error_body("the request is invalid", problems))

    @app.exception_handler(ValidationError)
    def _model_invalid(error: ValidationError) -> Response[str]:
        problems = problems_from_pydantic(list(error.errors(include_url=False)))
        return json_response(400, error_body("the request is invalid", problems))

    @app.exception_handler(ValueError)
    def _unparseable(error: ValueError) -> Response[str]:
        # Request validation raises ValueError for a body it cannot parse as its declared type (e.g. a
        # multipart body with no boundary); bodies are JSON, so that is the client's 415. Anything else
        # is a bug and stays a 500.
        media = _non_json_media(app)
        if media is None:
            raise error
        problem = FieldProblem("Content-Type", f"{media} is not accepted; send application/json")
        return json_response(415, error_body("unsupported media type", [problem]))

    @app.exception_handler(RecursionError)
    def _too_deep(error: RecursionError) -> Response[str]:
        # The JSON parser (and pydantic after it) stop at the interpreter's recursion limit: a body nested
        # deeper than that is the client's problem, not a crash.
        problem = FieldProblem(
            "body", f"nested too deeply (at most {MAX_JSON_DEPTH} levels of arrays/objects)"
        )
        return json_response(400, error_body("the request is invalid", [problem]))

    @app.exception_handler(UnicodeDecodeError)
    def _not_text(error: UnicodeDecodeError) -> Response[str]:
        problem = FieldProblem("body", f"malformed JSON: the body is not UTF-8 text (byte {error.start})")
        return json_response(400, error_body("the request is invalid", [problem]))

    @app.not_found
    def _no_route(error: Exception) -> Response[str]:
        path = app.current_event.path
        return json_response(404, error_body(f"no route for {app.current_event.http_method} {path}", []))

    @app.exception_handler(GeoexportError)
    def _domain(error: GeoexportError) -> Response[str]:
        status = status_for(error)
        if status >= 500 and not isinstance(error, InsufficientStorage):
            logger.exception("request failed", extra={"error": type(error).__name__})
        body = error_body(error.message, error.problems)
        if isinstance(error, InsufficientStorage):
            body.update(needed=error.needed, free=error.free, total=error.total, quota=error.quota)
        if error.retry_after_seconds is not None:
            return json_response(status, body, {"Retry-After": str(error.retry_after_seconds)})
        return json_response(status, body)

    return app
