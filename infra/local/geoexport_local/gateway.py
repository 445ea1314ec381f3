"""An HTTP front that turns requests into API Gateway (REST, v1 proxy) events for the template's routes."""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import sys
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from geoexport_local.functions import FunctionError, Functions, FunctionTimeout
from geoexport_local.template import ACCOUNT, Route, routes_for
from geoexport_local.usage import UsageMeter

log = logging.getLogger("geoexport_local.api")
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit


def build_event(
    method: str,
    route: Route,
    path: str,
    query: str,
    headers: dict[str, list[str]],
    body: bytes,
    params: dict[str, str],
    source_ip: str,
) -> dict[str, Any]:
    multi_query = parse_qs(query, keep_blank_values=True)
    try:
        text: str | None = body.decode("utf-8") if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "accountId": ACCOUNT,
            "apiId": "local",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip},
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def _allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM evaluation for the authorizer's policy: an explicit Deny wins, else any matching Allow."""
    allowed = False
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, pattern) for pattern in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def authorize(
    functions: Functions,
    route: Route,
    method: str,
    path: str,
    event: dict[str, Any],
    usage: UsageMeter | None = None,
) -> tuple[int, dict[str, Any]] | None:
    """Run the route's TOKEN authorizer as API Gateway does; None to proceed, else (status, body)."""
    token = event["headers"].get("Authorization") or event["headers"].get("authorization")
    if not token:
        return 401, {"message": "Unauthorized"}
    stack = functions.stack
    method_arn = f"arn:aws:execute-api:{stack.region}:{ACCOUNT}:local/v1/{method}{path}"
    assert route.authorizer is not None
    try:
        answer = functions.call(
            route.authorizer, {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
        )
    except Exception as error:
        if str(error) == "Unauthorized":
            return 401, {"message": "Unauthorized"}
        why = error.trace if isinstance(error, FunctionError) else traceback.format_exc()
        sys.stderr.write(f"authorizer crashed:\n{why}")
        return 500, {"message": None}
    if not _allows(answer.get("policyDocument", {}), method_arn):
        return 403, {"message": "User is not authorized to access this resource"}
    if route.api_key_required and usage is not None:
        refused = usage.check(answer.get("usageIdentifierKey"))
        if refused is not None:
            return refused
    event["requestContext"]["authorizer"] = {
        **answer.get("context", {}),
        "principalId": answer.get("principalId"),
    }
    return None


def make_server(
    host: str, port: int, functions: Functions, usage: UsageMeter | None = None
) -> ThreadingHTTPServer:
    routes = functions.stack.routes

    class Handler(BaseHTTPRequestHandler):
        server_version = "geoexport-local"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

        def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in ("content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, document: Any) -> None:
            self._reply(status, {"Content-Type": "application/json"}, json.dumps(document).encode())

        def _handle(self) -> None:
            # Read (or refuse) the body before anything else: on a kept-alive connection, unread bytes would
            # be taken for the next request.
            declared = (self.headers.get("Content-Length") or "0").strip()
            if not declared.isdigit():  # "-1", "abc": no body length to trust (API Gateway: 400)
                self.close_connection = True
                reason = f"Content-Length {declared!r} is not a length"
                self._json(
                    400, {"message": "bad request", "errors": [{"field": "Content-Length", "reason": reason}]}
                )
                return
            length = int(declared)
            if length > MAX_BODY:
                self.close_connection = True
                reason = f"larger than {MAX_BODY} bytes"
                self._json(
                    413,
                    {"message": "request body too large", "errors": [{"field": "body", "reason": reason}]},
                )
                return
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            path = parts.path.removeprefix("/v1") or "/"
            matches = routes_for(routes, path)
            if not matches:
                self._json(404, {"message": f"no route for {path}", "errors": []})
                return
            chosen = next(((r, m) for r, m in matches if r.method in (self.command, "ANY")), None)
            if chosen is None:
                allowed = ", ".join(sorted({r.method for r, _ in matches}))
                self._reply(
                    405,
                    {"Allow": allowed, "Content-Type": "application/json"},
                    json.dumps(
                        {"message": f"{self.command} is not allowed on {path}", "errors": []}
                    ).encode(),
                )
                return
            headers: dict[str, list[str]] = {}
            for key, value in self.headers.items():
                headers.setdefault(key, []).append(value)
            route, match = chosen
            event = build_event(
                self.command,
                route,
                path,
                parts.query,
                headers,
                body,
                match.groupdict(),
                self.client_address[0],
            )
            if route.authorizer is not None:
                denied = authorize(functions, route, self.command, path, event, usage)
                if denied is not None:
                    self._json(*denied)
                    return
            try:
                result = functions.call(route.function, event)
            except FunctionTimeout:
                self._json(504, {"message": "Endpoint request timed out"})  # as API Gateway
                return
            except Exception as error:
                # API Gateway answers 502 for a crashed Lambda; print why, whatever the logging setup.
                why = error.trace if isinstance(error, FunctionError) else traceback.format_exc()
                sys.stderr.write(f"handler {route.function} crashed:\n{why}")
                self._json(502, {"message": "Internal server error"})  # what API Gateway answers
                return
            out_headers = {k: str(v) for k, v in (result.get("headers") or {}).items()}
            for key, values in (result.get("multiValueHeaders") or {}).items():
                out_headers[key] = ", ".join(str(v) for v in values)
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            self._reply(int(result.get("statusCode", 200)), out_headers, data)

        def __getattr__(self, name: str) -> Any:
            # Every method (even made-up ones) goes through the router: 404/405 as API Gateway, never 501.
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # bursts of concurrent clients queue instead of being reset

    return Server((host, port), Handler)
