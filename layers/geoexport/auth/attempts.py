"""Credential-guessing brakes for the public token endpoint: failures per client id and per source address.

Why: ``POST /auth/token`` is outside every usage plan and each attempt costs a 210,000-iteration PBKDF2, so
a guesser could burn CPU (and try secrets) as fast as it could send. After ``threshold`` failures within
``window_seconds`` a key (a client id, or a source address) is locked out for a delay that doubles with
each further failure, up to ``max_lock_seconds``; a locked key is answered 429 with ``Retry-After`` *before*
any hashing. A success clears the client id's count (not the address's: one valid client must not launder
an address's guesses). Counts live in the counters table, so every function instance sees the same ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from geoexport import aws
from geoexport.errors import TooManyAttempts

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Brake:
    """How many failures a key may have in a window before it is locked, and for how long."""

    field: str  # what the 429 names: client_id or source
    threshold: int
    window_seconds: int = 900
    first_lock_seconds: int = 1
    max_lock_seconds: int = 900

    def lock_seconds(self, failures: int) -> int:
        if failures < self.threshold:
            return 0
        return int(min(self.max_lock_seconds, self.first_lock_seconds * 2 ** (failures - self.threshold)))


#: The template's defaults: 5 wrong secrets for one client id, or 50 failures from one address, in 15 min.
CLIENT_BRAKE = Brake("client_id", threshold=5)
SOURCE_BRAKE = Brake("source", threshold=50)


class Attempts:
    def __init__(
        self,
        db: DynamoDBClient,
        table: str,
        clock: Callable[[], float] = time.time,
        client_brake: Brake = CLIENT_BRAKE,
        source_brake: Brake = SOURCE_BRAKE,
    ) -> None:
        self._db = db
        self._table = table
        self._clock = clock
        self._brakes = {"client": client_brake, "source": source_brake}

    @staticmethod
    def _key(kind: str, value: str) -> dict[str, Any]:
        return {"name": {"S": f"auth-failures#{kind}#{value[:256]}"}}

    def check(self, client_id: str, source: str | None) -> None:
        """TooManyAttempts when the client id or the address is locked now."""
        now = self._clock()
        for kind, value in (("client", client_id), ("source", source)):
            if not value:
                continue
            with aws.translated("reading failed attempts"):
                item = self._db.get_item(
                    TableName=self._table, Key=self._key(kind, value), ConsistentRead=True
                ).get("Item", {})
            locked_until = float(item.get("lockedUntil", {}).get("N", "0"))
            if locked_until > now:
                raise TooManyAttempts(self._brakes[kind].field, max(1, int(locked_until - now + 0.999)))

    def failed(self, client_id: str, source: str | None) -> None:
        """Count one failure against both keys; lock those over their threshold."""
        for kind, value in (("client", client_id), ("source", source)):
            if value:
                self._count(kind, value)

    def succeeded(self, client_id: str) -> None:
        with aws.translated("clearing failed attempts"):
            self._db.delete_item(TableName=self._table, Key=self._key("client", client_id))

    def _count(self, kind: str, value: str) -> None:
        brake, now = self._brakes[kind], self._clock()
        key = self._key(kind, value)
        # Kept past the window and the longest lock, then dropped by the table's TTL (random client ids
        # from a guesser would otherwise pile up).
        expires = int(now + brake.window_seconds + brake.max_lock_seconds)
        values = {":one": {"N": "1"}, ":now": {"N": f"{now:.3f}"}, ":exp": {"N": str(expires)}}
        with aws.translated("counting a failed attempt"):
            try:  # within the window: one more
                answer = self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="ADD failures :one SET lastAt = :now, expiresAt = :exp",
                    ConditionExpression="lastAt >= :cutoff",
                    ExpressionAttributeValues={
                        **values,
                        ":cutoff": {"N": f"{now - brake.window_seconds:.3f}"},
                    },
                    ReturnValues="ALL_NEW",
                )
            except self._db.exceptions.ConditionalCheckFailedException:  # first in a new window
                answer = self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression=(
                        "SET failures = :one, lastAt = :now, expiresAt = :exp REMOVE lockedUntil"
                    ),
                    ExpressionAttributeValues=values,
                    ReturnValues="ALL_NEW",
                )
            failures = int(answer["Attributes"]["failures"]["N"])
            seconds = brake.lock_seconds(failures)
            if seconds:
                self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET lockedUntil = :until",
                    ExpressionAttributeValues={":until": {"N": f"{now + seconds:.3f}"}},
                )
