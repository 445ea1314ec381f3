"""Request validation and domain errors become 4xx bodies naming the field and the reason."""

import json
from typing import Annotated, Any

import pytest
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from geoexport.api import caller, json_response, make_resolver
from geoexport.errors import FieldProblem, NotFound, ServiceUnavailable, UnprocessableRequest
from geoexport.models import CreateExportTaskRequest

app = make_resolver()
raised: list[Exception] = []


@app.post("/export-tasks")
def create(request: Annotated[CreateExportTaskRequest, Body()]) -> Response[str]:
    if raised:
        raise raised[0]
    return json_response(201, {"ok": True})


def call(body: str, media: str = "application/json") -> tuple[int, dict[str, Any]]:
    event = {
        "path": "/export-tasks",
        "httpMethod": "POST",
        "headers": {"Content-Type": media},
        "multiValueHeaders": {"Content-Type": [media]},
        "body": body,
        "requestContext": {"stage": "v1"},
        "resource": "/export-tasks",
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "isBase64Encoded": False,
    }
    response = app.resolve(event, None)  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])


def valid() -> dict[str, Any]:
    return {
        "catalogRecordID": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "domain": "RASTER",
        "ROI": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"maxResolutionDeg": 0.067},
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [
                            [[35.0, 31.95], [34.9, 31.95], [34.9, 31.93], [35.0, 31.93], [35.0, 31.95]]
                        ],
                    },
                }
            ],
        },
    }


@pytest.fixture(autouse=True)
def _reset() -> None:
    raised.clear()


def fields(body: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["reason"] for e in body["errors"]}


def test_valid_request_passes() -> None:
    assert call(json.dumps(valid()))[0] == 201


def test_malformed_json() -> None:
    status, body = call('{"catalogRecordID": ')
    assert status == 400
    assert "malformed JSON" in " ".join(fields(body).values())


@pytest.mark.parametrize(
    ("mutate", "field", "reason"),
    [
        (lambda b: b.update(catalogRecordID="nope"), "catalogRecordID", "UUID"),
        (lambda b: b.update(domain="VECTORS"), "domain", "RASTER"),
        (lambda b: b.update(surprise=1), "surprise", "not permitted"),
        (lambda b: b["ROI"].update(features=[]), "ROI.features", "at least 1"),
        (
            lambda b: b["ROI"]["features"][0]["properties"].update(maxResolutionDeg=1.5),
            "ROI.features[0].properties.maxResolutionDeg",
            "less than or equal to 0.703125",
        ),
        (
            lambda b: b["ROI"]["features"][0]["properties"].update(maxResolutionDeg=2.0),
            "ROI.features[0].properties.maxResolutionDeg",
            "less than or equal to 0.703125",
        ),
        (
            lambda b: b["ROI"]["features"][0]["geometry"].update(coordinates=[[[0, 0], [1, 1], [0, 0]]]),
            "ROI.features[0].geometry.coordinates",
            "at least 4",
        ),
        (lambda b: b.update(ROI={"country": "France", "x": 1}), "ROI.x", "Extra inputs"),
        (lambda b: b.update(ROI=42), "ROI", "expected a FeatureCollection"),
        (lambda b: b.update(artifactCRS="EPSG:abc"), "artifactCRS", "pattern"),
        (lambda b: b.update(packer="rar"), "packer", "'none', 'zip', 'tar.gz' or 'tar.bz2'"),
        (
            lambda b: b["ROI"]["features"][0]["geometry"]["coordinates"][0].pop(),
            "ROI.features[0].geometry.coordinates",
            "open",
        ),
        (
            lambda b: b["ROI"]["features"][0]["geometry"].update(type="Point", coordinates=[1, 2]),
            "ROI.features[0].geometry",
            "tag",
        ),
        (
            lambda b: b.update(webhooks=[{"url": "not a url", "events": ["TASK_COMPLETED"]}]),
            "webhooks[0].url",
            "URL",
        ),
    ],
)
def test_each_problem_names_field_and_reason(mutate: Any, field: str, reason: str) -> None:
    body = valid()
    mutate(body)
    status, answer = call(json.dumps(body))
    assert status == 400
    problems = fields(answer)
    assert field in problems, problems
    assert reason.lower() in problems[field].lower()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFound("catalog record x does not exist"), 404),
        (UnprocessableRequest("cannot", [FieldProblem("ROI.features[0].geometry", "outside")]), 422),
        (ServiceUnavailable("try again"), 503),
    ],
)
def test_domain_errors_map_by_type(error: Exception, status: int) -> None:
    raised.append(error)
    got, body = call(json.dumps(valid()))
    assert got == status
    assert body["message"] == str(error)
    if isinstance(error, UnprocessableRequest):
        assert fields(body) == {"ROI.features[0].geometry": "outside"}


who = make_resolver()


@who.get("/me")
def me() -> Response[str]:
    return json_response(200, {"caller": caller(who)})


@pytest.mark.parametrize(
    ("authorizer", "expected"),
    [
        ({"sub": "gx-lambda", "principalId": "gx-lambda"}, "gx-lambda"),  # our Lambda authorizer
        ({"claims": {"sub": "cognito-user-1", "token_use": "access"}}, "cognito-user-1"),  # Cognito
        (None, None),
    ],
)
def test_the_caller_comes_from_either_authorizer(authorizer: Any, expected: str | None) -> None:
    event = {
        "path": "/me",
        "httpMethod": "GET",
        "headers": {},
        "body": None,
        "requestContext": {"stage": "v1", **({"authorizer": authorizer} if authorizer else {})},
        "resource": "/me",
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "isBase64Encoded": False,
    }
    response = who.resolve(event, None)  # type: ignore[arg-type]
    if expected is None:
        assert response["statusCode"] == 401
    else:
        assert response["statusCode"] == 200 and json.loads(response["body"])["caller"] == expected


@pytest.mark.parametrize("depth", [1_100, 10_000])
def test_deeply_nested_json_is_a_400_not_a_crash(depth: int) -> None:
    """Issue 12: a body nested 10,000 levels was a 502 (RecursionError)."""
    status, answer = call('{"ROI": ' + "[" * depth + "]" * depth + "}")
    assert status == 400, answer
    assert answer["errors"][0]["field"] == "body" and "nested" in answer["errors"][0]["reason"]


@pytest.mark.parametrize("media", ["application/merge-patch+json", "application/geo+json; charset=utf-8"])
def test_json_media_types_are_json(media: str) -> None:
    """Issue 12: RFC 7396's own media type on a PATCH was a 415."""
    assert call(json.dumps(valid()), media)[0] == 201


@pytest.mark.parametrize(
    ("media", "text"),
    [("application/x-www-form-urlencoded", "domain=RASTER"), ("text/plain", "domain=RASTER")],
)
def test_a_body_that_is_not_json_is_a_415_as_documented(media: str, text: str) -> None:
    """Issue 12: form-urlencoded bodies were parsed as forms and answered 400/422."""
    status, answer = call(text, media)
    assert status == 415 and answer["errors"][0]["field"] == "Content-Type"


def test_an_unknown_route_answers_in_the_documented_error_shape() -> None:
    event = {
        "path": "/nowhere",
        "httpMethod": "GET",
        "headers": {},
        "body": None,
        "requestContext": {"stage": "v1"},
        "resource": "/nowhere",
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "isBase64Encoded": False,
    }
    response = app.resolve(event, None)  # type: ignore[arg-type]
    assert response["statusCode"] == 404
    assert set(json.loads(response["body"])) == {"message", "errors"}
