"""S3 presigned links checked as S3 checks them, in front of moto (which serves any link as it is).

Why: moto's server does not verify request signatures, so on the local stack an edited link path served
another task's file, an upload URL edited to another key overwrote another client's file, and an expired
link still worked; tests of expiry and tampering meant nothing. This WSGI middleware takes every request
that carries a SigV4 query signature for S3 and answers as S3 does:

- ``403 AccessDenied`` ("Request has expired") once ``X-Amz-Date + X-Amz-Expires`` has passed;
- ``403 SignatureDoesNotMatch`` when the method, path, query or any signed header (``host``, and for
  uploads ``content-length``, ``content-md5``, ``x-amz-checksum-sha256``) differs from what was signed;
- ``400 BadDigest`` when a signed ``Content-MD5``/``x-amz-checksum-sha256`` does not match the body;
- ``400 InvalidRequest`` for SigV2 query links, as regions opened since 2014 answer (the service signs
  SigV4 only).

The signature is recomputed with botocore's own signer (the emulator's credentials are fixed). Requests
signed in the Authorization header (the functions' SDK calls) are passed through unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

SECRET_KEY = "testing"  # the emulator's: every client of the local stack signs with it

StartResponse = Callable[..., Any]


def _error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def expected_signature(method: str, url: str, headers: dict[str, str], credential: str, amz_date: str) -> str:
    """What S3 would compute for this presigned request (``url`` without ``X-Amz-Signature``)."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    access_key, _, region, service, _ = credential.split("/")
    signer = S3SigV4QueryAuth(Credentials(access_key, SECRET_KEY), service, region)
    request = AWSRequest(method=method, url=url, headers=headers)
    request.context["timestamp"] = amz_date
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


class PresignedS3:
    """The middleware (see the module's docstring)."""

    def __init__(
        self, app: Callable[..., Iterable[bytes]], clock: Callable[[], datetime] | None = None
    ) -> None:
        self._app = app
        self._clock = clock or (lambda: datetime.now(UTC))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        raw_query = environ.get("QUERY_STRING", "")
        if "AWSAccessKeyId=" in raw_query and "Signature=" in raw_query:  # SigV2 query links
            return _error(
                start_response,
                "400 Bad Request",
                "InvalidRequest",
                "The authorization mechanism you have provided is not supported. "
                "Please use AWS4-HMAC-SHA256.",
            )
        if "X-Amz-Signature=" not in raw_query:
            return self._app(environ, start_response)
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        credential = query.get("X-Amz-Credential", "")
        if credential.count("/") != 4 or credential.split("/")[3] != "s3":
            return self._app(environ, start_response)
        try:
            signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            expires = int(query["X-Amz-Expires"])
        except (KeyError, ValueError):
            return _error(start_response, "400 Bad Request", "AuthorizationQueryParametersError", "malformed")
        if self._clock() > signed_at + timedelta(seconds=expires):
            return _error(start_response, "403 Forbidden", "AccessDenied", "Request has expired")
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or ""
        path = urlsplit(raw_uri).path or environ.get("PATH_INFO", "/")
        unsigned = "&".join(p for p in raw_query.split("&") if not p.startswith("X-Amz-Signature="))
        headers: dict[str, str] = {}
        for name in query.get("X-Amz-SignedHeaders", "host").split(";"):
            value = environ.get("HTTP_HOST" if name == "host" else "HTTP_" + name.upper().replace("-", "_"))
            if name in ("content-length", "content-type"):
                value = environ.get(name.upper().replace("-", "_"))
            if value is not None:
                headers[name] = value
        url = f"http://{environ.get('HTTP_HOST', '')}{path}?{unsigned}"
        wanted = expected_signature(environ["REQUEST_METHOD"], url, headers, credential, query["X-Amz-Date"])
        if not hmac.compare_digest(wanted, query["X-Amz-Signature"]):
            return _error(
                start_response,
                "403 Forbidden",
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if "content-md5" in headers or "x-amz-checksum-sha256" in headers:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            digests = {
                "content-md5": base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode(),
                "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
            }
            if any(headers[name] != digests[name] for name in digests if name in headers):
                return _error(
                    start_response,
                    "400 Bad Request",
                    "BadDigest",
                    "The Content-MD5 or checksum you specified did not match what we received.",
                )
            environ["wsgi.input"] = io.BytesIO(body)
        return self._app(environ, start_response)
