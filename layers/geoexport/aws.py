"""boto3 client construction in one place, so every adapter talks to the same endpoint and region."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from geoexport.settings import Settings

_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    # Emulators (and S3-compatible stores) may not accept the CRC checksums botocore >= 1.36 adds.
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    s3={"addressing_style": "path"},
    signature_version="s3v4",  # presigned links: SigV4 (SigV2 is deprecated and unsupported in new regions)
)


def client(service: str, settings: Settings) -> Any:
    """A boto3 client for ``service`` at the configured endpoint (an emulator locally, AWS otherwise)."""
    import boto3

    return boto3.session.Session().client(
        service, region_name=settings.region, endpoint_url=settings.aws_endpoint_url, config=_CONFIG
    )
