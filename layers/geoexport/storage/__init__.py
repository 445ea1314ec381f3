"""Object storage (S3) behind a small adapter that takes an injected boto3 client."""

from geoexport.storage.s3 import ObjectStore

__all__ = ["ObjectStore"]
