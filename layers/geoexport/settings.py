"""Settings, read once per cold start from the function's environment.

Domain code never reads ``os.environ``: each ``functions/<name>/app.py`` calls :func:`Settings.from_environ`
at import time and passes the result (or adapters built from it) down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Everything a function may need; each function's template entry sets the names it uses."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    region: str = Field("us-east-1", alias="AWS_REGION")
    aws_endpoint_url: str | None = Field(None, alias="AWS_ENDPOINT_URL")
    tasks_table: str = Field("", alias="TASKS_TABLE")
    catalog_table: str = Field("", alias="CATALOG_TABLE")
    dedupe_table: str = Field("", alias="DEDUPE_TABLE")
    counters_table: str = Field("", alias="COUNTERS_TABLE")
    notify_function: str = Field("", alias="NOTIFY_FUNCTION_NAME")
    geometry_function: str = Field("", alias="GEOMETRY_FUNCTION_NAME")
    clc_raster_product: str = Field("", alias="CLC_RASTER_PRODUCT")  # catalog record name behind CLC+ orders
    clc_crs: str = Field("3035", alias="CLC_CRS")
    clc_vector_model: str = Field("", alias="CLC_VECTOR_MODEL")  # behind CLC+ Vector orders ("": all models)
    clients_table: str = Field("", alias="CLIENTS_TABLE")
    features_table: str = Field("", alias="FEATURES_TABLE")
    tenant: str = Field("geoexport", pattern=r"^[A-Za-z0-9_-]+$", alias="FEATURE_TENANT")  # in feature URNs
    feature_files_bucket: str = Field("", alias="FEATURE_FILES_BUCKET")
    vector_part_bytes: int = Field(100 * 1024**2, ge=256 * 1024, alias="VECTOR_PART_BYTES")  # GPKG split size
    feature_event_bus: str = Field("", alias="FEATURE_EVENT_BUS")  # outcome events of feature requests
    feature_request_dead_letter_url: str = Field("", alias="FEATURE_REQUEST_DEAD_LETTER_URL")
    file_storage_id: str = Field("geoexport-s3", alias="FILE_STORAGE_ID")  # seed 004's pluginBusinessId
    upload_url_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600, alias="UPLOAD_URL_TTL_SECONDS")
    signing_key_secret: str = Field("", alias="SIGNING_KEY_SECRET_ARN")
    token_lifetime_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600, alias="TOKEN_LIFETIME_SECONDS")
    exports_bucket: str = Field("", alias="EXPORTS_BUCKET")
    state_machine_arn: str = Field("", alias="STATE_MACHINE_ARN")
    retention_days: int = Field(14, ge=1, le=3650, alias="EXPORT_RETENTION_DAYS")
    download_url_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600, alias="DOWNLOAD_URL_TTL_SECONDS")
    storage_quota_bytes: int = Field(100 * 1024**3, ge=0, alias="STORAGE_QUOTA_BYTES")
    render_threads: int = Field(0, ge=0, le=64, alias="RENDER_THREADS")
    webhook_timeout_seconds: float = Field(15.0, gt=0, le=60, alias="WEBHOOK_TIMEOUT_SECONDS")
    webhook_allow_loopback: bool = Field(False, alias="WEBHOOK_ALLOW_LOOPBACK")  # local development only
    webhook_https_only: bool = Field(False, alias="WEBHOOK_HTTPS_ONLY")  # the template sets it on AWS
    webhook_queue_url: str = Field("", alias="WEBHOOK_QUEUE_URL")
    webhook_dead_letter_url: str = Field("", alias="WEBHOOK_DEAD_LETTER_URL")
    webhook_retry_base_seconds: float = Field(30.0, gt=0, alias="WEBHOOK_RETRY_BASE_SECONDS")
    webhook_retry_max_delay_seconds: float = Field(3600.0, gt=0, alias="WEBHOOK_RETRY_MAX_DELAY_SECONDS")
    webhook_retry_window_seconds: float = Field(25 * 3600.0, gt=0, alias="WEBHOOK_RETRY_WINDOW_SECONDS")
    webhook_safety_net_seconds: float = Field(180.0, ge=0, alias="WEBHOOK_SAFETY_NET_SECONDS")
    max_roi_vertices: int = Field(10_000, ge=4, alias="MAX_ROI_VERTICES")
    max_export_tiles: int = Field(2_000_000, ge=1, alias="MAX_EXPORT_TILES")
    max_export_bytes: int = Field(20 * 1024**3, ge=1, alias="MAX_EXPORT_BYTES")
    reconcile_grace_seconds: float = Field(300.0, ge=0, alias="RECONCILE_GRACE_SECONDS")
    faults: str = Field("", alias="GEOEXPORT_FAULTS")  # fault injection, see geoexport.pipeline.faults

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            alias = field.alias or name
            if alias in env and env[alias] != "":
                values[alias] = env[alias]
        if "AWS_REGION" not in values and env.get("AWS_DEFAULT_REGION"):
            values["AWS_REGION"] = env["AWS_DEFAULT_REGION"]
        return cls.model_validate(values)

    @property
    def threads(self) -> int:
        return self.render_threads or max(1, os.cpu_count() or 1)

    def gdal_s3_options(self) -> dict[str, str]:
        """GDAL config so /vsis3/ reaches the same S3 endpoint boto3 uses (an emulator, locally)."""
        if not self.aws_endpoint_url:
            return {}
        parts = urlsplit(self.aws_endpoint_url)
        return {
            "AWS_S3_ENDPOINT": parts.netloc,
            "AWS_HTTPS": "YES" if parts.scheme == "https" else "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
        }
