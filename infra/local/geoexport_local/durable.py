"""Durable local state: what the emulator holds survives a graceful stop, a crash or a ``kill -9``.

moto's server keeps everything in memory. This module mirrors every accepted write into one SQLite
database (WAL, ``synchronous=FULL``) under the data directory, *before* the emulator answers the request,
and loads it back on the next start:

- DynamoDB: each written item (put, update, delete, transaction, batch) as its DynamoDB JSON, one row per
  key; a transaction's items commit in one SQLite transaction, with those of the writes queued beside it
  (a group commit, in the order the writes were applied; each is answered once committed). Tables
  themselves come from template.yaml.
- S3: each object's metadata (moto's own pickled key state, minus the body) with the body in a
  content-addressed file under ``blobs/`` (written and fsynced before the row names it). Buckets come from
  the template; buckets created at run time are recorded. Unfinished multipart uploads are not kept: a
  step that was uploading is re-run.
- SQS: each message as moto pickles it, keyed by message id (a move to a dead-letter queue rewrites the
  row); deletes and purges remove rows. Queues come from the template.
- Secrets Manager, EventBridge, API Gateway, EventBridge Scheduler and SES (small): the whole backend,
  pickled after each write (SES's sent messages included, so a test can read them back after a restart).
- Step Functions executions are not kept: an export that was running is resumed (or failed) by the
  Reconcile function from the task's own record, as on AWS (see geoexport.pipeline.reconcile).

A kill at any point leaves the last committed state: SQLite's journal makes each commit atomic, a blob is
renamed into place only when complete, and an unreferenced blob is removed at the next start. The format
is versioned (``meta.format``); another version is refused with a message that says what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import io
import json
import logging
import os
import pickle
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.etree import ElementTree

log = logging.getLogger("geoexport_local.durable")

FORMAT = 1
ACCOUNT = "123456789012"
SMALL_BACKENDS = ("secretsmanager", "events", "apigateway", "scheduler", "ses")
_READ_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Test")
_NOT_STATE = {"PutEvents"}  # EventBridge traffic, not configuration

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ddb (tbl TEXT NOT NULL, hk TEXT NOT NULL, rk TEXT NOT NULL, item TEXT NOT NULL,
                                PRIMARY KEY (tbl, hk, rk));
CREATE TABLE IF NOT EXISTS s3_buckets (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS s3_objects (bucket TEXT NOT NULL, name TEXT NOT NULL, state BLOB NOT NULL,
                                       blob TEXT NOT NULL, PRIMARY KEY (bucket, name));
CREATE TABLE IF NOT EXISTS sqs (id TEXT PRIMARY KEY, queue TEXT NOT NULL, message BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS backends (service TEXT PRIMARY KEY, state BLOB NOT NULL);
"""


class DataDirError(SystemExit):
    """The data directory cannot be used as it is (another version, or another stack has it)."""


@dataclass
class Restored:
    items: int = 0
    objects: int = 0
    messages: int = 0
    backends: int = 0
    seconds: float = 0.0


class StateStore:
    """The SQLite database and blob directory of one data directory."""

    def __init__(self, directory: Path, wait: float = 0.0) -> None:
        """``wait``: seconds to wait for another process that has the directory to let it go."""
        self.directory = directory
        self.blobs = directory / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self._lockfile = (directory / "lock").open("a+")
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DataDirError(
                        f"{directory} is in use by another running geoexport stack; stop it first, or set "
                        "GEOEXPORT_DATA_DIR to another directory"
                    ) from None
                time.sleep(0.1)
        self._db = sqlite3.connect(
            directory / "state.sqlite", check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._lock = threading.RLock()
        with self._lock:
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT),))
            elif int(row[0]) != FORMAT:
                raise DataDirError(
                    f"{directory} holds local state in format {row[0]}; this release reads format {FORMAT}. "
                    "Keep it with the release that wrote it, or start afresh with `make clean-data` "
                    "(that deletes every local task, feature and client)."
                )
        self.group_commit = GroupCommit(self)  # DynamoDB items: see GroupCommit

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._lockfile.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic, durable commit (SQLite's own journal: a crash keeps the one before)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args))

    def put_blob(self, value: bytes) -> str:
        """Store a body by its SHA-256 (write, fsync, rename: a crash never leaves half a body)."""
        digest = hashlib.sha256(value).hexdigest()
        path = self.blobs / digest
        if not path.exists():
            partial = self.blobs / f".{digest}.{threading.get_ident()}.part"
            with partial.open("wb") as handle:
                handle.write(value)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        return digest

    def read_blob(self, digest: str) -> bytes:
        return (self.blobs / digest).read_bytes()

    def collect_garbage(self) -> int:
        """Remove bodies no object names (left by a crash between a blob and its row, or by deletes)."""
        used = {row[0] for row in self.rows("SELECT DISTINCT blob FROM s3_objects")}
        removed = 0
        for path in self.blobs.iterdir():
            if path.name not in used:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


class Durability:
    """The hooks' switch and their store: off until the saved state is back in the emulator."""

    def __init__(self) -> None:
        self.store: StateStore | None = None
        self._paused = threading.local()

    def active(self) -> StateStore | None:
        if self.store is None or getattr(self._paused, "on", False):
            return None
        return self.store

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Writes made while loading saved state are not written back."""
        self._paused.on = True
        try:
            yield
        finally:
            self._paused.on = False


DURABLE = Durability()


# ---------------------------------------------------------------------------------------------- DynamoDB


def _key_text(value: Any) -> str:
    if len(value) == 1 and type(value.get("S")) is str:  # a string key, as every table's: the same text
        return '{"S":' + json.dumps(value["S"]) + "}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def touched_items(method: str, arguments: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(table, key or item attributes) of every item a DynamoDB backend write can change."""
    if method == "put_item":
        return [(arguments["table_name"], arguments["item_attrs"])]
    if method in ("update_item", "delete_item"):
        return [(arguments["table_name"], arguments["key"])]
    if method == "transact_write_items":
        found = []
        for entry in arguments["transact_items"]:
            kind, operation = next(iter(entry.items()))
            if kind != "ConditionCheck":
                found.append((operation["TableName"], operation.get("Key") or operation.get("Item") or {}))
        return found
    return []


def item_row(
    table_name: str, hash_value: dict[str, Any], range_value: dict[str, Any] | None, attributes: Any
) -> tuple[str, str, str, str | None]:
    """The saved row of one item: its table, its keys' text, its DynamoDB JSON (None: the item is gone)."""
    return (
        table_name,
        _key_text(hash_value),
        _key_text(range_value) if range_value is not None else "",
        json.dumps(attributes) if attributes is not None else None,
    )


def save_items(backend: Any, touched: Iterable[tuple[str, dict[str, Any]]]) -> Callable[[], None]:
    """Queue the current state of each touched item (or its absence) for the next commit; the returned
    wait() returns once it is committed (raising what the commit raised). Called under the DynamoDB
    lock, so the queue holds the writes in the order they were applied."""
    store = DURABLE.active()
    if store is None:
        return _nothing
    from moto.dynamodb.models.dynamo_type import DynamoType

    rows: list[tuple[str, str, str, str | None]] = []
    for table_name, attributes in touched:
        table = backend.tables.get(table_name)
        if table is None or table.hash_key_attr not in attributes:
            continue
        hash_value = attributes[table.hash_key_attr]
        range_value = attributes.get(table.range_key_attr) if table.range_key_attr else None
        item = table.get_item(
            DynamoType(hash_value), DynamoType(range_value) if range_value is not None else None
        )
        attrs = item.to_json()["Attributes"] if item is not None else None
        rows.append(item_row(table_name, hash_value, range_value, attrs))
    if not rows:
        return _nothing
    return store.group_commit.submit(rows)


def _nothing() -> None:
    """Nothing to wait for."""


class GroupCommit:
    """One thread writes the items queued by many DynamoDB writes in one SQLite transaction (each commit
    costs ~2.5 ms here, however few its rows), while the next writes run: a write's request waits for the
    commit that holds its items before it is answered, so what was answered is on disk. Commits follow
    the queue's order, the order the writes were applied in."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._queue: list[tuple[list[tuple[str, str, str, str | None]], dict[str, Any]]] = []
        self._ready = threading.Condition()
        threading.Thread(target=self._run, name="group-commit", daemon=True).start()

    def submit(self, rows: list[tuple[str, str, str, str | None]]) -> Callable[[], None]:
        outcome: dict[str, Any] = {"done": threading.Event()}
        with self._ready:
            self._queue.append((rows, outcome))
            self._ready.notify()

        def wait() -> None:
            outcome["done"].wait()
            if "error" in outcome:
                raise outcome["error"]

        return wait

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    self._ready.wait()
                batch, self._queue = self._queue, []
            try:
                with self._store.transaction() as db:
                    for rows, _ in batch:
                        for table_name, hk, rk, item in rows:
                            if item is None:
                                db.execute(_DELETE_ITEM, (table_name, hk, rk))
                            else:
                                db.execute(_PUT_ITEM, (table_name, hk, rk, item))
            except BaseException as error:  # every write of the batch fails with it (as one commit did)
                for _, outcome in batch:
                    outcome["error"] = error
            for _, outcome in batch:
                outcome["done"].set()


_DELETE_ITEM = "DELETE FROM ddb WHERE tbl = ? AND hk = ? AND rk = ?"
_PUT_ITEM = "INSERT OR REPLACE INTO ddb VALUES (?, ?, ?, ?)"
_depth = threading.local()


def make_durable_write(original: Callable[..., Any], method: str, lock: Any) -> Callable[..., Any]:
    """Wrap a DynamoDB backend write: one at a time (DynamoDB is atomic per write), saved before it
    returns. Only the outermost call saves (a transaction's inner writes may still be rolled back)."""
    signature = inspect.signature(original)

    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved = _nothing
        with lock:
            depth = getattr(_depth, "value", 0)
            _depth.value = depth + 1
            try:
                result = original(self, *args, **kwargs)
            finally:
                _depth.value = depth
            if depth == 0 and DURABLE.active() is not None:
                arguments = signature.bind(self, *args, **kwargs).arguments
                saved = save_items(self, touched_items(method, arguments))
        saved()  # outside the lock: the next writes go on while this one's items are committed
        return result

    return write


def make_durable_batch(original: Callable[..., Any], lock: Any) -> Callable[..., Any]:
    """Wrap moto's BatchWriteItem handler: its puts and deletes (each atomic, as in DynamoDB) are saved in
    one commit at the end instead of one commit per item, which made loading features disk-bound."""

    def write(handler: Any) -> Any:
        saved = _nothing
        with lock:
            depth = getattr(_depth, "value", 0)
            _depth.value = depth + 1
            try:
                result = original(handler)
            finally:
                _depth.value = depth
            if depth == 0 and DURABLE.active() is not None:
                body = handler.body if isinstance(handler.body, dict) else json.loads(handler.body or "{}")
                requests = body.get("RequestItems", {})
                touched = [
                    (table, (request.get("PutRequest") or {}).get("Item")
                     or (request.get("DeleteRequest") or {}).get("Key") or {})
                    for table, entries in requests.items()
                    for request in entries
                ]  # fmt: skip
                saved = save_items(handler.dynamodb_backend, touched)
        saved()
        return result

    return write


def restore_items(store: StateStore, region: str) -> int:
    from moto.backends import get_backend

    backend = get_backend("dynamodb")[ACCOUNT][region]
    count = 0
    for table_name, item in store.rows("SELECT tbl, item FROM ddb"):
        table = backend.tables.get(table_name)
        if table is None:
            log.warning("saved items of table %s: no such table in template.yaml, left on disk", table_name)
            continue
        table.put_item(json.loads(item))
        count += 1
    return count


# ---------------------------------------------------------------------------------------------------- S3


def _s3_backend() -> Any:
    from moto.backends import get_backend

    return get_backend("s3")[ACCOUNT]["global"]


def save_object(bucket_name: str, key_name: str) -> None:
    store = DURABLE.active()
    if store is None:
        return
    bucket = _s3_backend().buckets.get(bucket_name)
    key = bucket.keys.get(key_name) if bucket is not None else None
    if key is None:
        with store.transaction() as db:
            db.execute("DELETE FROM s3_objects WHERE bucket = ? AND name = ?", (bucket_name, key_name))
        return
    state = key.__getstate__()  # moto's own pickling of a key: every attribute and the body
    body = state.pop("value")
    digest = store.put_blob(body if isinstance(body, bytes) else str(body).encode())
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO s3_objects VALUES (?, ?, ?, ?)",
            (bucket_name, key_name, pickle.dumps(state), digest),
        )


def save_bucket(bucket_name: str) -> None:
    store = DURABLE.active()
    if store is None:
        return
    exists = bucket_name in _s3_backend().buckets
    with store.transaction() as db:
        if exists:
            db.execute("INSERT OR IGNORE INTO s3_buckets VALUES (?)", (bucket_name,))
        else:
            db.execute("DELETE FROM s3_buckets WHERE name = ?", (bucket_name,))
            db.execute("DELETE FROM s3_objects WHERE bucket = ?", (bucket_name,))


def restore_objects(store: StateStore) -> int:
    from moto.s3.models import FakeKey

    backend = _s3_backend()
    for (name,) in store.rows("SELECT name FROM s3_buckets"):
        if name not in backend.buckets:
            backend.create_bucket(name, "us-east-1")
    count = 0
    for bucket_name, key_name, state, digest in store.rows(
        "SELECT bucket, name, state, blob FROM s3_objects"
    ):
        bucket = backend.buckets.get(bucket_name)
        if bucket is None:
            log.warning("saved object s3://%s/%s: no such bucket, left on disk", bucket_name, key_name)
            continue
        key: Any = FakeKey.__new__(FakeKey)
        values = pickle.loads(state)
        values["value"] = store.read_blob(digest)
        key.__setstate__(values)
        bucket.keys[key_name] = key
        count += 1
    return count


# --------------------------------------------------------------------------------------------------- SQS


def install_sqs_hooks() -> None:
    """Every message a queue gains (sent, from S3 or EventBridge, or moved to a DLQ) and loses."""
    from moto.sqs.models import Queue, SQSBackend

    if getattr(Queue, "_geoexport_durable", False):
        return
    add, delete, purge = Queue.add_message, Queue.delete_message, SQSBackend.purge_queue

    def add_message(self: Any, message: Any) -> None:
        add(self, message)
        store = DURABLE.active()
        if store is not None and any(m is message for m in reversed(self._messages)):
            with store.transaction() as db:
                db.execute(
                    "INSERT OR REPLACE INTO sqs VALUES (?, ?, ?)",
                    (message.id, self.name, pickle.dumps(message)),
                )

    def delete_message(self: Any, receipt_handle: str) -> None:
        ids = [m.id for m in self._messages if m.had_receipt_handle(receipt_handle)]
        delete(self, receipt_handle)
        store = DURABLE.active()
        if store is not None and ids:
            with store.transaction() as db:
                db.executemany("DELETE FROM sqs WHERE id = ?", [(i,) for i in ids])

    def purge_queue(self: Any, queue_name: str) -> None:
        purge(self, queue_name)
        store = DURABLE.active()
        if store is not None:
            with store.transaction() as db:
                db.execute("DELETE FROM sqs WHERE queue = ?", (queue_name,))

    Queue.add_message = add_message  # type: ignore[method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]
    SQSBackend.purge_queue = purge_queue  # type: ignore[method-assign]
    Queue._geoexport_durable = True  # type: ignore[attr-defined]


def restore_messages(store: StateStore, region: str) -> int:
    from moto.backends import get_backend

    backend = get_backend("sqs")[ACCOUNT][region]
    now = time.time()
    count = 0
    for queue_name, blob in store.rows("SELECT queue, message FROM sqs"):
        queue = backend.queues.get(queue_name)
        if queue is None:
            log.warning("saved messages of queue %s: no such queue, left on disk", queue_name)
            continue
        message = pickle.loads(blob)
        if any(m.id == message.id for m in queue._messages):
            continue  # sent again while the template was provisioned (S3's test event)
        retention = int(getattr(queue, "message_retention_period", None) or 345600)
        if message.sent_timestamp and message.sent_timestamp / 1000 + retention < now:
            continue  # SQS would have dropped it by now
        queue._messages.append(message)
        count += 1
    return count


# ----------------------------------------------------------------------------- small backends (pickled)


def save_backend(service: str, region: str) -> None:
    store = DURABLE.active()
    if store is None:
        return
    from moto.backends import get_backend

    state = pickle.dumps(get_backend(service)[ACCOUNT][region])  # type: ignore[call-overload]
    with store.transaction() as db:
        db.execute("INSERT OR REPLACE INTO backends VALUES (?, ?)", (service, state))


def restore_backends(store: StateStore, region: str) -> int:
    from moto.backends import get_backend

    count = 0
    for service, state in store.rows("SELECT service, state FROM backends"):
        get_backend(service)[ACCOUNT][region] = pickle.loads(state)
        count += 1
    return count


# -------------------------------------------------------------------------------------- the WSGI wrapper


def _service(environ: dict[str, Any]) -> str:
    """Which AWS service a request is for, from its SigV4 credential scope (header or presigned query)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
    else:
        credential = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Credential")
        scope = credential[0] if credential else ""
    parts = scope.split("/")
    return parts[3] if len(parts) >= 5 else "s3"


def _read_only(environ: dict[str, Any]) -> bool:
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return True
    action = str(environ.get("HTTP_X_AMZ_TARGET", "")).rsplit(".", 1)[-1]
    return action.startswith(_READ_PREFIXES) or action in _NOT_STATE


class DurableApp:
    """moto's WSGI application, with every accepted S3 and small-backend write saved before the answer."""

    STRIPES = 64

    def __init__(self, app: Any, region: str) -> None:
        self._app = app
        self._region = region
        self._backend_locks = {service: threading.Lock() for service in SMALL_BACKENDS}
        self._key_locks = [threading.Lock() for _ in range(self.STRIPES)]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if DURABLE.active() is None or _read_only(environ):
            return self._app(environ, start_response)
        service = _service(environ)
        if service == "s3":
            return self._s3(environ, start_response)
        if service in self._backend_locks:
            with self._backend_locks[service]:
                status, body = self._run(environ, start_response)
                if status < 300:
                    save_backend(service, self._region)
                return body
        return self._app(environ, start_response)

    def _run(self, environ: dict[str, Any], start_response: Any) -> tuple[int, list[bytes]]:
        """Run the request to the end (its answer waits until the write is saved)."""
        seen: dict[str, int] = {}

        def record(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen["status"] = int(status.split(maxsplit=1)[0])
            return start_response(status, headers, exc_info)

        result = self._app(environ, record)
        try:
            body = list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return seen.get("status", 500), body

    def _s3(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = unquote(environ.get("PATH_INFO", ""))
        bucket, _, key = path.lstrip("/").partition("/")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if not bucket:
            return self._app(environ, start_response)
        if not key:
            if "delete" in query and environ.get("REQUEST_METHOD") == "POST":
                return self._delete_objects(bucket, environ, start_response)
            if environ.get("REQUEST_METHOD") == "POST" and not query:
                return self._form_upload(bucket, environ, start_response)
            status, body = self._run(environ, start_response)
            if status < 300 and not set(query) - {"x-id"}:  # the bucket itself, not one of its settings
                save_bucket(bucket)
            return body
        if environ.get("REQUEST_METHOD") == "POST" and "uploads" in query:
            return self._app(environ, start_response)  # a multipart upload starts: nothing is stored yet
        if "partNumber" in query and "uploadId" in query:
            return self._app(environ, start_response)  # a part: kept only once the upload completes
        with self._stripe(bucket, key):
            status, body = self._run(environ, start_response)
            if status < 300:
                save_object(bucket, key)
            return body

    def _form_upload(self, bucket: str, environ: dict[str, Any], start_response: Any) -> Any:
        """A browser-form (presigned POST) upload names its key inside the form: after it, save every object
        of the bucket written since it began (rare, so a scan of the bucket is affordable)."""
        from datetime import UTC, datetime

        began = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=1)  # moto's stamps are naive UTC
        status, body = self._run(environ, start_response)
        found = _s3_backend().buckets.get(bucket)
        if status < 300 and found is not None:
            for name in [name for name, key in list(found.keys.items()) if key.last_modified >= began]:
                with self._stripe(bucket, name):
                    save_object(bucket, name)
        return body

    def _delete_objects(self, bucket: str, environ: dict[str, Any], start_response: Any) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(payload)
        names = sorted(
            {
                (element.text or "")
                for element in ElementTree.fromstring(payload or b"<Delete/>").iter()
                if element.tag.rsplit("}", 1)[-1] == "Key"
            }
        )
        stripes = sorted({self._index(bucket, name) for name in names})
        with contextlib.ExitStack() as stack:
            for index in stripes:
                stack.enter_context(self._key_locks[index])
            status, body = self._run(environ, start_response)
            if status < 300:
                for name in names:
                    save_object(bucket, name)
            return body

    def _index(self, bucket: str, key: str) -> int:
        return int(hashlib.blake2b(f"{bucket}/{key}".encode(), digest_size=4).hexdigest(), 16) % self.STRIPES

    def _stripe(self, bucket: str, key: str) -> threading.Lock:
        return self._key_locks[self._index(bucket, key)]


def restore(store: StateStore, region: str) -> Restored:
    """Items, objects and messages back into the emulator (after template.yaml's resources exist)."""
    started = time.monotonic()
    with DURABLE.paused():
        result = Restored(
            items=restore_items(store, region),
            objects=restore_objects(store),
            messages=restore_messages(store, region),
        )
    store.collect_garbage()
    result.seconds = time.monotonic() - started
    return result
