"""The authorizer's answer: an IAM policy over the API's methods for this token's scopes.

The policy covers every method the scopes allow (not just the one called), so API Gateway can cache it
per token; a method outside them is denied by omission and answered 403.
"""

from __future__ import annotations

from typing import Any

from geoexport.auth.service import Principal
from geoexport.auth.usage import usage_key


def decide(principal: Principal, method_arn: str) -> dict[str, Any]:
    # arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path...}
    base, stage = method_arn.split("/")[:2]
    resources = []
    if "exports:read" in principal.scopes or "exports:write" in principal.scopes:
        resources += [f"{base}/{stage}/GET/*", f"{base}/{stage}/HEAD/*"]
    if "exports:write" in principal.scopes:
        resources += [
            f"{base}/{stage}/POST/*",
            f"{base}/{stage}/PUT/*",
            f"{base}/{stage}/PATCH/*",
            f"{base}/{stage}/DELETE/*",
        ]
    statement: dict[str, Any] = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resources}
    if not resources:
        statement = {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": method_arn}
    return {
        "principalId": principal.sub,
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        "context": {"sub": principal.sub, "scope": " ".join(sorted(principal.scopes))},
        "usageIdentifierKey": usage_key(principal.sub),  # the caller's usage plan (rate limits)
    }
