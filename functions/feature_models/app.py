"""POST/GET /models: feature models (a name and a JSON Schema for feature properties, seed 004)."""

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import responses
from geoexport.features.models import FeatureModel, ModelIn, ModelPage
from geoexport.settings import FeaturesSettings

settings = FeaturesSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
models = bootstrap.model_service(settings)


@app.post(
    "/models",
    summary="Register a feature model: a name and the JSON Schema its features' properties must meet",
    responses=responses({201: ("The model", FeatureModel)}, 400, 409, 422),
)
def register_model(body: Annotated[ModelIn, Body()]) -> Response[str]:
    model = models.register(body, caller(app))
    logger.info("model registered", extra={"model": model.name})
    return json_response(201, model)


@app.get("/models", summary="Registered models, by name", responses=responses({200: ("Models", ModelPage)}))
def list_models() -> Response[str]:
    caller(app)
    return json_response(200, ModelPage(items=models.all_models()))


@app.get("/models/<name>", summary="One model", responses=responses({200: ("The model", FeatureModel)}, 404))
def get_model(name: str) -> Response[str]:
    caller(app)
    return json_response(200, models.get(name))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
