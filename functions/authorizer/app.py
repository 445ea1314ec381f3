"""The API's Lambda authorizer (TOKEN): a valid bearer token, and the scope the method needs."""

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.auth.policy import decide
from geoexport.auth.tokens import TokenError
from geoexport.settings import SigningSettings

settings = SigningSettings.from_environ(os.environ)
logger = Logger()
auth = bootstrap.auth_service(settings)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        principal = auth.principal(event.get("authorizationToken"))
    except TokenError as error:
        logger.info("token refused", extra={"reason": str(error)})
        raise Exception("Unauthorized") from None  # API Gateway's contract: this message means 401
    return decide(principal, event["methodArn"])
