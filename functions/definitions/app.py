"""/export-definitions: saved exports (create, list, read, replace, delete), a run now, their runs, and the
stable link to the newest completed run's file (geoexport.definitions)."""

import os
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver
from geoexport.api.schema import responses
from geoexport.definitions.models import (
    DefinitionInput,
    DefinitionList,
    DefinitionRun,
    ExportDefinition,
    LatestArtifact,
    RunCause,
    RunList,
)
from geoexport.settings import DefinitionSettings

settings = DefinitionSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
definitions = bootstrap.definition_service(settings)


@app.post(
    "/export-definitions",
    summary="Save an export definition (checked as its runs' tasks will be; its schedules start now)",
    responses=responses({201: ("Saved", ExportDefinition)}, 404, 415, 422),
)
def create_definition(body: Annotated[DefinitionInput, Body()]) -> Response[str]:
    definition = definitions.create(body, caller(app))
    logger.info("definition created", extra={"definitionId": str(definition.id)})
    return json_response(201, shown(definition), headers={"Location": f"/export-definitions/{definition.id}"})


def shown(definition: ExportDefinition) -> dict[str, Any]:
    """As stored, without the members nobody set (the request's GeoJSON reads as it was sent)."""
    return definition.model_dump(mode="json", exclude_none=True)


@app.get(
    "/export-definitions",
    summary="Your export definitions, newest first",
    responses=responses({200: ("A page of definitions", DefinitionList)}),
)
def list_definitions(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    nextToken: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    items, token = definitions.page(caller(app), limit, nextToken)
    return json_response(200, {"items": [shown(d) for d in items], "nextToken": token})


@app.get(
    "/export-definitions/<definition_id>",
    summary="One export definition",
    responses=responses({200: ("The definition", ExportDefinition)}, 404),
)
def get_definition(definition_id: UUID) -> Response[str]:
    return json_response(200, shown(definitions.owned(definition_id, caller(app))))


@app.put(
    "/export-definitions/<definition_id>",
    summary="Replace an export definition (its schedules follow; its runs stay)",
    responses=responses({200: ("Replaced", ExportDefinition)}, 404, 415, 422),
)
def replace_definition(definition_id: UUID, body: Annotated[DefinitionInput, Body()]) -> Response[str]:
    return json_response(200, shown(definitions.replace(definition_id, body, caller(app))))


@app.delete(
    "/export-definitions/<definition_id>",
    summary="Delete an export definition and its schedules (the tasks of its runs stay)",
    responses=responses({204: ("Deleted", None)}, 404),
)
def delete_definition(definition_id: UUID) -> Response[str]:
    definitions.delete(definition_id, caller(app))
    return Response(status_code=204, body="")


@app.post(
    "/export-definitions/<definition_id>/run",
    summary="Run an export definition now: a new export task linked to it (or the reason none was made)",
    responses=responses(
        {201: ("A task was created", DefinitionRun), 200: ("Refused", DefinitionRun)}, 404, 503
    ),
)
def run_definition(definition_id: UUID) -> Response[str]:
    definitions.owned(definition_id, caller(app))
    run = definitions.run(definition_id, RunCause.MANUAL)
    assert run is not None  # it exists: owned() just read it
    return json_response(201 if run.taskId else 200, run)


@app.get(
    "/export-definitions/<definition_id>/runs",
    summary="The definition's runs, newest first, each with its task (and its status now) or the reason "
    "none was made",
    responses=responses({200: ("A page of runs", RunList)}, 404),
)
def list_runs(
    definition_id: UUID,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    nextToken: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    runs, token = definitions.runs(definition_id, caller(app), limit, nextToken)
    return json_response(200, RunList(items=runs, nextToken=token))


@app.get(
    "/export-definitions/<definition_id>/latest",
    summary="Stable link: a redirect to the newest completed run's file (a fresh presigned URL each time)",
    responses=responses({302: ("Found: Location is the file's presigned URL", LatestArtifact)}, 404),
)
def latest(
    definition_id: UUID,
    artifact: Annotated[
        str | None, Query(max_length=512, description="a file name of the run (default: its data file)")
    ] = None,
) -> Response[str]:
    answer = definitions.latest(definition_id, caller(app), artifact)
    return json_response(302, answer, headers={"Location": answer.url, "Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
