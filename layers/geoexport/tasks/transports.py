"""Transports (easydb's ``_transports``): where a finished export also goes, besides its download links.

Each transport of a task has its own state (``pending`` -> ``done`` | ``failed`` with a reason), kept on the
task and written to its log. Transports run after the export is COMPLETED (TaskChanges queues the task;
the Transports function delivers), so a failed transport never fails the export; ``POST
/export-tasks/{id}/transports:retry`` puts the failed ones back to ``pending`` and queues the task again.

- ``s3``: the artifacts are copied to ``s3://<bucket>/<prefix><name>``. The service only writes to buckets
  whose name matches the operator's ``TransportBucketPattern`` (the IAM policy of the Transports function
  is scoped to the same pattern), and checks the bucket answers before copying. Each copy is read back and
  its SHA-256 compared with the artifact's.
- ``email``: one message through SES from the operator's sender address, with the export's files, sizes and
  presigned links (valid for ``DownloadUrlTtlSeconds`` at most; ``GET /export-tasks/{id}`` mints fresh ones).
  Never a token: the links alone grant access to those files, and only until they expire.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from uuid import UUID

from geoexport.errors import Conflict
from geoexport.models.tasks import (
    StoredArtifact,
    TaskRecord,
    TaskStatus,
    Transport,
    TransportKind,
    TransportState,
    TransportStatus,
)
from geoexport.tasks.log import LogEntry, LogStore, LogType


class TransportFailed(Exception):
    """A delivery that cannot be made as asked; the message says why (it becomes the transport's reason)."""


class Copier(Protocol):
    def check_writable(self, bucket: str) -> None: ...
    def copy_verified(self, source_key: str, bucket: str, key: str, sha256: str) -> str: ...


class Mailer(Protocol):
    def send(self, recipients: list[str], subject: str, body: str) -> str: ...


class Links(Protocol):
    def presign_get(self, key: str, expires_in: int, filename: str) -> str: ...


class TransportTasks(Protocol):
    def get(self, task_id: UUID | str) -> TaskRecord: ...
    def set_transport(self, task_id: UUID | str, status: TransportStatus) -> None: ...


class Queue(Protocol):
    def send(self, task_id: str) -> None: ...


def _size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


class Transports:
    def __init__(
        self,
        tasks: TransportTasks,
        log: LogStore,
        copier: Copier,
        mailer: Mailer,
        links: Links,
        bucket_pattern: str,
        link_ttl_seconds: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._tasks = tasks
        self._log = log
        self._copier = copier
        self._mailer = mailer
        self._links = links
        self._pattern = bucket_pattern
        self._ttl = link_ttl_seconds
        self._clock = clock

    def deliver(self, task_id: UUID | str) -> list[TransportStatus]:
        """Run every pending transport of the task once; each ends done or failed (with the reason)."""
        task = self._tasks.get(task_id)
        results = []
        for key in sorted(task.transportStates, key=int):
            status = task.transportStates[key]
            if status.state is not TransportState.PENDING:
                continue
            spec = task.request.transports[status.index]
            attempt = status.attempts + 1
            if task.status is not TaskStatus.COMPLETED:
                outcome = self._failed(
                    status, attempt, f"the export is {task.status.value}: nothing to deliver"
                )
            else:
                try:
                    delivered = self._one(task, spec)
                except TransportFailed as error:
                    outcome = self._failed(status, attempt, str(error))
                else:
                    outcome = status.model_copy(
                        update={
                            "state": TransportState.DONE,
                            "reason": None,
                            "attempts": attempt,
                            "updatedAt": self._clock(),
                            "delivered": delivered,
                        }
                    )
            self._tasks.set_transport(task.id, outcome)
            self._log.add(task.id, _entry(outcome), f"transport#{outcome.index}#{attempt}")
            results.append(outcome)
        return results

    def _failed(self, status: TransportStatus, attempt: int, reason: str) -> TransportStatus:
        return status.model_copy(
            update={
                "state": TransportState.FAILED,
                "reason": reason,
                "attempts": attempt,
                "updatedAt": self._clock(),
                "delivered": [],
            }
        )

    def _one(self, task: TaskRecord, spec: Transport) -> list[str]:
        if spec.type is TransportKind.S3:
            return self._to_bucket(task.artifacts, str(spec.bucket), spec.prefix)
        if spec.type is TransportKind.EMAIL:
            return [self._email(task, spec)]
        return []

    def _to_bucket(self, artifacts: list[StoredArtifact], bucket: str, prefix: str) -> list[str]:
        if not fnmatch.fnmatchcase(bucket, self._pattern):
            raise TransportFailed(
                f"the service may not write to bucket {bucket}: it writes only to buckets matching "
                f"{self._pattern!r} (the operator's TransportBucketPattern)"
            )
        self._copier.check_writable(bucket)
        return [
            self._copier.copy_verified(artifact.key, bucket, f"{prefix}{artifact.name}", artifact.sha256)
            for artifact in artifacts
        ]

    def _email(self, task: TaskRecord, spec: Transport) -> str:
        lifetime = self._ttl
        if task.expiredAt is not None:
            lifetime = min(lifetime, int((task.expiredAt - self._clock()).total_seconds()))
        if lifetime <= 0:
            raise TransportFailed("the export has expired: there are no links to send")
        title = task.request.description or f"export {task.id}"
        lines = [spec.message, ""] if spec.message else []
        lines += [
            f"Your export {task.request.description!r} ({task.id}) is ready ({len(task.artifacts)} files)."
            if task.request.description
            else f"Your export {task.id} is ready ({len(task.artifacts)} files).",
            f"The links below work for {lifetime // 60} minutes; the files are kept until "
            f"{task.expiredAt:%Y-%m-%d %H:%M} UTC. GET /export-tasks/{task.id} gives fresh links."
            if task.expiredAt
            else f"The links below work for {lifetime // 60} minutes.",
            "",
        ]
        for artifact in task.artifacts:
            url = self._links.presign_get(artifact.key, lifetime, artifact.name)
            lines += [f"{artifact.name} ({_size(artifact.size)}, sha256 {artifact.sha256})", url, ""]
        return self._mailer.send(spec.recipients, f"geoexport: {title} is ready", "\n".join(lines))


def _entry(status: TransportStatus) -> LogEntry:
    if status.state is TransportState.DONE:
        kind, message = LogType.TRANSPORT_DONE, f"{status.type.value} transport to {status.target} done"
    else:
        kind = LogType.TRANSPORT_FAILED
        message = f"{status.type.value} transport to {status.target} failed: {status.reason}"
    return LogEntry(
        time=status.updatedAt or datetime.min, type=kind, message=message, attempt=status.attempts
    )


class TransportRetries:
    """The API side: failed transports back to pending, and the task queued for delivery again."""

    def __init__(self, tasks: TransportTasks, queue: Queue, clock: Callable[[], datetime]) -> None:
        self._tasks = tasks
        self._queue = queue
        self._clock = clock

    def retry(self, task: TaskRecord) -> list[TransportStatus]:
        if task.status is not TaskStatus.COMPLETED:
            raise Conflict(f"transports run for COMPLETED exports; this one is {task.status.value}")
        retried = []
        for key in sorted(task.transportStates, key=int):
            status = task.transportStates[key]
            if status.state is TransportState.FAILED:
                pending = status.model_copy(
                    update={"state": TransportState.PENDING, "reason": None, "updatedAt": self._clock()}
                )
                self._tasks.set_transport(task.id, pending)
                retried.append(pending)
        if retried:
            self._queue.send(str(task.id))
        return retried


def needs_delivery(old: TaskRecord | None, new: TaskRecord | None) -> bool:
    """A stored change that should queue the task's transports: it just became final with some pending."""
    if new is None or new.status not in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.ABORTED):
        return False
    if old is not None and old.status is new.status:
        return False
    return any(s.state is TransportState.PENDING for s in new.transportStates.values())
