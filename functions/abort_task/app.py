"""Task control: POST /export-tasks/{id}/abort (the task ends ABORTED, TASK_FAILED callbacks fire), /pause
(the workflow stops at the next step boundary), /resume (it continues where it stopped), /archive (its files
move to the archive storage class) and /restore (they come back; 202 while the archive thaws them); and the
operator-wide pause: /operations/pause and /operations/resume (scope exports:operate)."""

import os
from typing import Annotated, Any
from uuid import UUID

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from geoexport import bootstrap
from geoexport.api import caller, json_response, make_resolver, require_scope
from geoexport.api.schema import responses
from geoexport.auth.clients import OPERATE
from geoexport.models import ExportTask
from geoexport.models.tasks import OperatorPause
from geoexport.settings import AbortSettings
from geoexport.tasks.pause import OperatorResume

settings = AbortSettings.from_environ(os.environ)
logger = Logger()
app = make_resolver()
service = bootstrap.abort_service(settings)
pauses = bootstrap.pause_service(settings)
archives = bootstrap.archive_service(settings)
operations = bootstrap.operator_pauses(settings)


class OperatorPauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=500, description="shown on every export it pauses")


@app.post(
    "/export-tasks/<task_id>/abort",
    summary="Abort a pending or running export",
    responses=responses({200: ("The aborted task", ExportTask)}, 404, 409, 503),
)
def abort_export_task(task_id: UUID) -> Response[str]:
    task = service.abort(task_id, caller(app))
    logger.info("export task aborted", extra={"taskId": str(task_id)})
    return json_response(200, task)


@app.post(
    "/export-tasks/<task_id>/pause",
    summary="Pause a pending or running export: it stops at the next step boundary (or work item), keeping "
    "its progress and storage reservation",
    responses=responses({200: ("The paused task", ExportTask)}, 404, 409, 503),
)
def pause_export_task(task_id: UUID) -> Response[str]:
    task = pauses.pause(task_id, caller(app))
    logger.info("export task paused", extra={"taskId": str(task_id)})
    return json_response(200, task)


@app.post(
    "/export-tasks/<task_id>/resume",
    summary="Resume a paused export: it continues from what is stored",
    responses=responses({200: ("The resumed task", ExportTask)}, 404, 409, 503),
)
def resume_export_task(task_id: UUID) -> Response[str]:
    task = pauses.resume(task_id, caller(app))
    logger.info("export task resumed", extra={"taskId": str(task_id)})
    return json_response(200, task)


@app.post(
    "/export-tasks/<task_id>/archive",
    summary="Archive a completed export: its files move to the archive storage class and out of the storage "
    "quota; the task is ARCHIVED, with no download links, until it is restored",
    responses=responses({200: ("The archived task", ExportTask)}, 404, 409, 503),
)
def archive_export_task(task_id: UUID) -> Response[str]:
    task = archives.archive(task_id, caller(app))
    logger.info("export task archived", extra={"taskId": str(task_id)})
    return json_response(200, task)


@app.post(
    "/export-tasks/<task_id>/restore",
    summary="Restore an archived export: 200 when it is COMPLETED again (fresh links, a new expiredAt); 202 "
    "while the archive storage thaws the files (hours on AWS; the task's archive.restoreRequestedAt says "
    "since when, and TASK_COMPLETED is sent again when it is done)",
    responses=responses(
        {
            200: ("The restored task, COMPLETED", ExportTask),
            202: ("The task, still ARCHIVED, with its restore under way", ExportTask),
        },
        404,
        409,
        503,
    ),
)
def restore_export_task(task_id: UUID) -> Response[str]:
    done, task = archives.restore(task_id, caller(app))
    logger.info("export task restore", extra={"taskId": str(task_id), "done": done})
    return json_response(200 if done else 202, task)


@app.get(
    "/operations/pause",
    summary="The operator-wide pause: on or off, since when, why (scope exports:operate)",
    responses=responses({200: ("The pause switch", OperatorPause)}, 403, 503),
)
def operator_pause_state() -> Response[str]:
    require_scope(app, OPERATE)
    return json_response(200, operations.state())


@app.post(
    "/operations/pause",
    summary="Pause every export (storage maintenance): running ones stop at their next step boundary, new "
    "ones at their first, all PAUSED with pausedBy operator; nothing is lost (scope exports:operate)",
    responses=responses({200: ("The pause switch, on", OperatorPause)}, 403, 422, 503),
)
def operator_pause(body: Annotated[OperatorPauseRequest, Body()]) -> Response[str]:
    require_scope(app, OPERATE)
    state = operations.pause(body.reason, caller(app))
    logger.info("operator pause on", extra={"reason": state.reason})
    return json_response(200, state)


@app.post(
    "/operations/resume",
    summary="End the operator-wide pause and resume the exports it paused (a batch per call: call again "
    "while 'more' is true); exports their owners paused stay paused (scope exports:operate)",
    responses=responses({200: ("The switch, off, and the exports resumed", OperatorResume)}, 403, 503),
)
def operator_resume() -> Response[str]:
    require_scope(app, OPERATE)
    result = operations.resume()
    logger.info("operator pause off", extra={"resumed": len(result.resumed), "more": result.more})
    return json_response(200, result)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
