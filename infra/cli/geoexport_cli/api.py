"""Where the CLI finds the API and its credentials, and the small HTTP client it talks to it with.

Precedence: flags, then the environment (``GEOEXPORT_API_URL``, ``GEOEXPORT_CLIENT_ID``,
``GEOEXPORT_CLIENT_SECRET``), then the config file (``$XDG_CONFIG_HOME/geoexport/config.json``, else
``~/.config/geoexport/config.json``: ``{"api": ..., "client_id": ..., "client_secret": ...}``), then the
local stack's state file (what ``make run`` wrote). So the same commands work against a deployed stack.
Only the standard library here: ``geoexport --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class CliError(Exception):
    """A failure to report on stderr (exit status 1), in words a user can act on."""


def state_file() -> dict[str, Any]:
    """The local stack's state file: GEOEXPORT_STATE, else local.json in its data directory."""
    data = Path(os.environ.get("GEOEXPORT_DATA_DIR") or ".geoexport")
    path = Path(os.environ.get("GEOEXPORT_STATE") or data / "local.json")
    return json.loads(path.read_text()) if path.exists() else {}


def config_file() -> dict[str, Any]:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = base / "geoexport" / "config.json"
    if not path.exists():
        return {}
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except ValueError as error:
        raise CliError(f"{path} is not JSON: {error}") from error
    return loaded


@dataclass
class Settings:
    api: str
    client_id: str
    client_secret: str


def settings(api: str | None, client_id: str | None, client_secret: str | None) -> Settings:
    """The API URL and credentials, from the first source that has them (see the module's docstring)."""
    env = os.environ
    sources = [
        {"api": api, "client_id": client_id, "client_secret": client_secret},
        {
            "api": env.get("GEOEXPORT_API_URL"),
            "client_id": env.get("GEOEXPORT_CLIENT_ID"),
            "client_secret": env.get("GEOEXPORT_CLIENT_SECRET"),
        },
        config_file(),
        state_file(),
    ]
    found: dict[str, str] = {}
    for name in ("api", "client_id", "client_secret"):
        for source in sources:
            if source.get(name):
                found[name] = str(source[name])
                break
    missing = [name for name in ("api", "client_id", "client_secret") if name not in found]
    if missing:
        flags = ", ".join("--" + name.replace("_", "-") for name in missing)
        raise CliError(f"no {', '.join(missing)}: give {flags}, the environment, or a config file")
    return Settings(found["api"].rstrip("/"), found["client_id"], found["client_secret"])


class Api:
    """The geoexport API as one client: a bearer token fetched once, JSON in and out."""

    def __init__(self, config: Settings, timeout: float = 60.0) -> None:
        self.config = config
        self._timeout = timeout
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            body = {"client_id": self.config.client_id, "client_secret": self.config.client_secret}
            _, answer = self.call("POST", "/auth/token", body, auth=False)
            self._token = str(answer["access_token"])
        return self._token

    def call(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None, auth: bool = True
    ) -> tuple[int, Any]:
        """(status, parsed JSON); a 4xx/5xx becomes CliError with the API's message and field errors."""
        url = self.config.api + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                text = response.read()
                return response.status, json.loads(text or b"{}")
        except urllib.error.HTTPError as error:
            raise CliError(describe_error(error.code, error.read())) from error
        except urllib.error.URLError as error:
            raise CliError(f"cannot reach {self.config.api}: {error.reason}") from error


def describe_error(status: int, raw: bytes) -> str:
    """``422 the ROI cannot be exported ...; ROI.features[0].geometry: does not intersect ...``"""
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        return f"{status} {raw[:300].decode(errors='replace')}"
    message = str(answer.get("message", "")) if isinstance(answer, dict) else str(answer)
    problems = answer.get("errors", []) if isinstance(answer, dict) else []
    details = "; ".join(f"{p.get('field')}: {p.get('reason')}" for p in problems if isinstance(p, dict))
    return f"{status} {message}" + (f" ({details})" if details else "")
