"""S3 adapter: the few object operations the service needs, with transient faults made explicit."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geoexport.errors import NotFound, TransientError
from geoexport.features.files import Digests, UploadRule

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

_TRANSIENT_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "503", "500"}


def _translate(error: Exception, what: str) -> Exception:
    """Map botocore errors to domain errors so the state machine can tell retryable from final."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}:
            return NotFound(f"{what}: not found")
        if code in _TRANSIENT_CODES:
            return TransientError(f"{what}: S3 answered {code}")
        return error
    if isinstance(error, BotoCoreError):
        return TransientError(f"{what}: {error}")
    return error


#: Storage classes whose objects must be restored before they can be read.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


class ObjectStore:
    """One bucket. Keys are plain strings; callers decide the layout."""

    def __init__(self, s3_client: S3Client, bucket: str) -> None:
        self._s3 = s3_client
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_file(self, key: str, path: Path, sha256_hex: str, content_type: str) -> None:
        """Upload a local file; S3 verifies the SHA-256 we computed while writing it."""
        checksum = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        try:
            size = path.stat().st_size
            if size <= 64 * 1024 * 1024:
                with path.open("rb") as body:
                    self._s3.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=body,
                        ContentType=content_type,
                        ChecksumSHA256=checksum,
                        Metadata={"sha256": sha256_hex},
                    )
            else:
                # Multipart: S3 verifies a SHA-256 of every part (the whole file's is in the metadata).
                self._s3.upload_file(
                    str(path),
                    self.bucket,
                    key,
                    ExtraArgs={
                        "ContentType": content_type,
                        "Metadata": {"sha256": sha256_hex},
                        "ChecksumAlgorithm": "SHA256",
                    },
                )
        except Exception as error:
            raise _translate(error, f"upload of {self.uri(key)}") from error

    def put_json(self, key: str, document: Any) -> None:
        self.put_bytes(key, json.dumps(document, separators=(",", ":")).encode(), "application/json")

    def put_bytes(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except Exception as error:
            raise _translate(error, f"write of {self.uri(key)}") from error

    def get_bytes(self, key: str) -> bytes:
        try:
            body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as error:
            raise _translate(error, f"read of {self.uri(key)}") from error
        return body

    def get_json(self, key: str) -> Any:
        return json.loads(self.get_bytes(key))

    def download(self, key: str, path: Path) -> None:
        try:
            self._s3.download_file(self.bucket, key, str(path))
        except Exception as error:
            raise _translate(error, f"download of {self.uri(key)}") from error

    def head(self, key: str) -> dict[str, Any] | None:
        """Object metadata, or None when it does not exist."""
        from botocore.exceptions import ClientError

        try:
            response: dict[str, Any] = dict(self._s3.head_object(Bucket=self.bucket, Key=key))
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise _translate(error, f"head of {self.uri(key)}") from error
        return response

    def copy(self, source_key: str, target_key: str) -> None:
        try:
            self._s3.copy_object(
                Bucket=self.bucket,
                Key=target_key,
                CopySource={"Bucket": self.bucket, "Key": source_key},
                MetadataDirective="COPY",
            )
        except Exception as error:
            raise _translate(error, f"copy to {self.uri(target_key)}") from error

    def copy_as(self, source_key: str, target_key: str, storage_class: str = "STANDARD") -> None:
        """Copy within the bucket into ``storage_class`` (boto3's managed copy: multipart past 8 MB, so
        objects over copy_object's 5 GB limit copy too)."""
        try:
            self._s3.copy(
                {"Bucket": self.bucket, "Key": source_key},
                self.bucket,
                target_key,
                ExtraArgs={"StorageClass": storage_class, "MetadataDirective": "COPY"},
            )
        except Exception as error:
            raise _translate(error, f"copy to {self.uri(target_key)}") from error

    def restore(self, key: str, days: int, tier: str) -> None:
        """Ask the archive storage to thaw ``key`` for ``days``; a restore already under way is fine."""
        from botocore.exceptions import ClientError

        try:
            self._s3.restore_object(
                Bucket=self.bucket,
                Key=key,
                RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier}},  # type: ignore[typeddict-item]
            )
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) != "RestoreAlreadyInProgress":
                raise _translate(error, f"restore of {self.uri(key)}") from error

    def readable(self, key: str) -> bool:
        """True when ``key`` can be read now: not in an archive class, or thawed by a finished restore."""
        head = self.head(key)
        if head is None:
            raise NotFound(f"{self.uri(key)}: not found")
        if head.get("StorageClass") not in ARCHIVE_CLASSES:
            return True
        return 'ongoing-request="false"' in str(head.get("Restore", ""))

    def touch(self, key: str, older_than: timedelta = timedelta(0)) -> None:
        """Copy an object onto itself when older than ``older_than``: its age, and with it the bucket
        lifecycle's expiry clock, restarts."""
        head = self.head(key)
        if head is None:
            raise NotFound(f"{self.uri(key)}: not found")
        modified = head.get("LastModified")
        if modified is not None and datetime.now(UTC) - modified < older_than:
            return
        try:
            self._s3.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata=head.get("Metadata", {}),
                ContentType=head.get("ContentType", "application/octet-stream"),
            )
        except Exception as error:
            raise _translate(error, f"touch of {self.uri(key)}") from error

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], int(item["Size"])
        except Exception as error:
            raise _translate(error, f"listing of {self.uri(prefix)}") from error

    def delete_prefix(self, prefix: str) -> int:
        keys = [key for key, _ in self.keys(prefix)]
        for start in range(0, len(keys), 1000):
            batch: list[ObjectIdentifierTypeDef] = [{"Key": key} for key in keys[start : start + 1000]]
            self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def presign_get(self, key: str, expires_in: int, filename: str) -> str:
        url: str = self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=max(1, expires_in),
        )
        return url


class S3FileStorage:
    """Feature files in one bucket: presigned PUTs in, digests computed by streaming the object back."""

    def __init__(self, s3_client: S3Client, bucket: str, storage_id: str) -> None:
        self._s3 = s3_client
        self._objects = ObjectStore(s3_client, bucket)
        self.bucket = bucket
        self.storage_id = storage_id

    def upload_url(self, key: str, expires_in: int, must: UploadRule) -> tuple[str, dict[str, str]]:
        """A presigned PUT that S3 itself holds to the declared file: the checksum (``Content-MD5`` or
        ``x-amz-checksum-sha256``) and, when declared, the size are signed, so other bytes (a larger body,
        or a replacement for a file already verified) are refused by S3 (403/400), not stored. Answers the
        URL and the headers the PUT must carry."""
        digest = base64.b64encode(bytes.fromhex(must.checksum)).decode()
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        headers: dict[str, str] = {}
        if must.algorithm == "MD5":
            params["ContentMD5"] = headers["Content-MD5"] = digest
        else:
            params["ChecksumSHA256"] = headers["x-amz-checksum-sha256"] = digest
        if must.size is not None:
            params["ContentLength"] = must.size
            headers["Content-Length"] = str(must.size)
        url: str = self._s3.generate_presigned_url("put_object", Params=params, ExpiresIn=max(1, expires_in))
        return url, headers

    def url(self, key: str) -> str:
        return self._objects.uri(key)

    def key_of(self, url: str) -> str | None:
        prefix = f"s3://{self.bucket}/"
        return url[len(prefix) :] if url.startswith(prefix) else None

    def digests(self, key: str) -> Digests | None:
        import hashlib

        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except Exception as error:
            translated = _translate(error, f"s3://{self.bucket}/{key}")
            if isinstance(translated, NotFound):
                return None
            raise translated from error
        md5, sha256, size = hashlib.md5(usedforsecurity=False), hashlib.sha256(), 0
        for chunk in iter(lambda: body.read(1024 * 1024), b""):
            md5.update(chunk)
            sha256.update(chunk)
            size += len(chunk)
        return Digests(md5.hexdigest(), sha256.hexdigest(), size)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        return self._objects.delete_prefix(prefix)


class BucketCopier:
    """Copies of exports into buckets other than ours (the ``s3`` transport), each read back and checked."""

    def __init__(self, s3_client: S3Client, source_bucket: str) -> None:
        self._s3 = s3_client
        self._source = source_bucket

    def _reason(self, error: Exception, what: str) -> Exception:
        """A client-side refusal becomes TransportFailed (the transport's reason); passing faults stay."""
        from botocore.exceptions import ClientError

        from geoexport.tasks.transports import TransportFailed

        translated = _translate(error, what)
        if isinstance(translated, TransientError):
            return translated
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            known = {
                "404": "the bucket does not exist",
                "NoSuchBucket": "the bucket does not exist",
                "403": "access denied: the bucket's policy does not let the service write",
                "AccessDenied": "access denied: the bucket's policy does not let the service write",
            }
            return TransportFailed(f"{what}: {known.get(code, code or str(error))}")
        return TransportFailed(f"{what}: {error}")

    def check_writable(self, bucket: str) -> None:
        try:
            self._s3.head_bucket(Bucket=bucket)
        except Exception as error:
            raise self._reason(error, f"s3://{bucket}") from error

    def copy_verified(self, source_key: str, bucket: str, key: str, sha256: str) -> str:
        """Copy (multipart when large, by boto3's transfer manager), then hash the copy as it is stored."""
        import hashlib

        uri = f"s3://{bucket}/{key}"
        try:
            self._s3.copy({"Bucket": self._source, "Key": source_key}, bucket, key)
            digest = hashlib.sha256()
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(1024 * 1024), b""):
                digest.update(chunk)
        except Exception as error:
            raise self._reason(error, f"copy to {uri}") from error
        if digest.hexdigest() != sha256:
            from geoexport.tasks.transports import TransportFailed

            raise TransportFailed(
                f"the copy at {uri} does not match the export (sha256 {digest.hexdigest()})"
            )
        return uri


class S3UrlReader:
    """Reads ``s3://bucket/key`` URLs of the buckets it is given (the feature files' one), nothing else."""

    def __init__(self, s3_client: S3Client, buckets: set[str]) -> None:
        self._s3 = s3_client
        self._buckets = buckets

    def download(self, url: str, path: Path) -> None:
        bucket, _, key = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or bucket not in self._buckets or not key:
            raise NotFound(f"{url} is not a stored file this service keeps")
        try:
            self._s3.download_file(bucket, key, str(path))
        except Exception as error:
            raise _translate(error, f"download of {url}") from error
