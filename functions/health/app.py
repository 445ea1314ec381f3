"""GET /health: the API is up. Touches no dependency, so it stays cheap for load balancers and probes."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from geoexport import __version__
from geoexport.api import json_response, make_resolver

app = make_resolver()


class Health(BaseModel):
    status: str
    version: str


@app.get(
    "/health",
    summary="Liveness",
    responses={200: {"description": "Up", "content": {"application/json": {"model": Health}}}},
)
def health() -> Response[str]:
    return json_response(200, {"status": "ok", "version": __version__})


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
