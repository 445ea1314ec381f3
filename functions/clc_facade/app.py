"""CLC+ Backbone API facade (seed 003): product orders and order status, mapped onto export tasks."""

import os
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import responses
from geoexport.settings import ClcSettings, TaskServiceSettings
from geoexport.tasks.clc import ClcFacade, EuropeOrder, NationalOrder, OrderAnswer, OrderStatus, ProductOrder


class Settings(TaskServiceSettings, ClcSettings):
    """What this function reads from its environment (a missing name fails the cold start)."""


settings = Settings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
facade = ClcFacade(
    bootstrap.task_service(settings),
    bootstrap.catalog_repository(settings),
    settings.clc_raster_product,
    settings.clc_crs,
    settings.clc_vector_model,
)
ORDER_ERRORS = (400, 404, 413, 422, 429, 503, 507)


@app.post(
    "/products/get_product",
    summary="CLC+: order the product clipped to an AoI (WKT, EPSG:4326); delivered in EPSG:3035",
    responses=responses({200: ("The order", OrderAnswer)}, *ORDER_ERRORS),
)
def get_product(order: Annotated[ProductOrder, Body()]) -> Response[str]:
    return json_response(200, facade.get_product(order, caller(app)))


@app.post(
    "/products/get_national_product",
    summary="CLC+: order a country's product, in its national projection",
    responses=responses({200: ("The order", OrderAnswer)}, *ORDER_ERRORS),
)
def get_national_product(order: Annotated[NationalOrder, Body()]) -> Response[str]:
    return json_response(200, facade.get_national_product(order, caller(app)))


@app.post(
    "/products/get_product_europe",
    summary="CLC+: order the whole coverage (EPSG:3035)",
    responses=responses({200: ("The order", OrderAnswer)}, *ORDER_ERRORS),
)
def get_product_europe(order: Annotated[EuropeOrder, Body()]) -> Response[str]:
    return json_response(200, facade.get_product_europe(order, caller(app)))


@app.get(
    "/services/order_status/<order_id>",
    summary="CLC+: RECEIVED, QUEUED, RUNNING, SUCCESS (result: download link), FAILED or INVALID",
    responses=responses({200: ("The order's state", OrderStatus)}, 404),
)
def order_status(order_id: UUID) -> Response[str]:
    return json_response(200, facade.status(order_id, caller(app)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
