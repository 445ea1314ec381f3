"""POST /auth/token (and CLC+'s POST /auth/get_bearer_token): client credentials for a bearer token."""

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from geoexport import bootstrap
from geoexport.api import json_response, make_resolver
from geoexport.api.schema import responses
from geoexport.settings import TokenSettings

settings = TokenSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
auth = bootstrap.token_service(settings)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    client_id: str = Field(
        min_length=1, max_length=128, validation_alias=AliasChoices("client_id", "user_id")
    )
    client_secret: str = Field(min_length=1, max_length=256)


class TokenAnswer(BaseModel):
    access_token: str
    token_type: str
    expires_in: int


def _issue(request: TokenRequest) -> Response[str]:
    source = app.current_event.request_context.identity.source_ip
    token = auth.issue(request.client_id, request.client_secret, source)
    logger.info("token issued", extra={"clientId": request.client_id})  # never the secret
    return json_response(
        200,
        TokenAnswer(
            access_token=token.access_token, token_type=token.token_type, expires_in=token.expires_in
        ),
    )


@app.post(
    "/auth/token",
    summary="Exchange client credentials for a bearer token (JWT)",
    responses=responses({200: ("A token", TokenAnswer)}, 401, 415, 429, public=True),
)
def token(request: Annotated[TokenRequest, Body()]) -> Response[str]:
    return _issue(request)


@app.post(
    "/auth/get_bearer_token",
    summary="CLC+ alias of /auth/token (user_id is accepted for client_id)",
    responses=responses({200: ("A token", TokenAnswer)}, 401, 415, 429, public=True),
)
def get_bearer_token(request: Annotated[TokenRequest, Body()]) -> Response[str]:
    return _issue(request)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
