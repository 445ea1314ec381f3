"""Metrics and traces: CloudWatch embedded metric format (EMF) lines and X-Ray, through powertools.

Metrics go out as JSON lines on stdout (CloudWatch turns them into metrics; locally they are log lines), in
the namespace of ``POWERTOOLS_METRICS_NAMESPACE``. Tracer (the X-Ray SDK, patching boto3) is used by the
pipeline and background functions only: importing it adds 190-340 ms to a cold start (measured here), too
much for an API function, whose time Lambda's and API Gateway's own X-Ray segments already show.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from geoexport.models.tasks import TaskRecord, TaskStatus


@contextmanager
def step_duration(metrics: Metrics, step: str) -> Iterator[None]:
    """``StepDuration`` (ms) of one pipeline step run, dimensioned by step; recorded when it succeeds."""
    started = time.perf_counter()
    yield
    metrics.add_dimension(name="step", value=step)
    metrics.add_metric(
        name="StepDuration", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000
    )


def ended(metrics: Metrics, task: TaskRecord) -> None:
    """An export reached a final status (counted once: called when its end is announced)."""
    metrics.add_metric(name=f"Exports{task.status.value.title()}", unit=MetricUnit.Count, value=1)
    if task.status is TaskStatus.COMPLETED:
        metrics.add_metric(
            name="ExportBytes", unit=MetricUnit.Bytes, value=sum(artifact.size for artifact in task.artifacts)
        )
        if task.finishedAt is not None:
            seconds = (task.finishedAt - task.createdAt).total_seconds()
            metrics.add_metric(name="ExportSeconds", unit=MetricUnit.Seconds, value=seconds)
