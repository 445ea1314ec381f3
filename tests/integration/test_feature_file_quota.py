"""Issue 12: feature files had no quota. Uploads are checked against the owner's free share before their
URLs are handed out, a verified file is counted once in the owner's ledger, deleting the feature frees it."""

from __future__ import annotations

import hashlib
import urllib.request
from uuid import uuid4

import pytest

from geoexport import bootstrap
from geoexport.auth.clients import ClientRepository
from geoexport.errors import InsufficientStorage
from geoexport.features.feature import FeatureIn
from geoexport.features.models import ModelIn
from tests.integration.conftest import Cloud

DATA = b"survey bytes " * 100


def feature(filesize: int, data: bytes = DATA) -> FeatureIn:
    return FeatureIn.model_validate(
        {
            "id": f"quota-{uuid4().hex[:6]}",
            "type": "Feature",
            "model": "quota-site",
            "entityType": "DATA",
            "geometry": {"type": "Point", "coordinates": [8.5, 47.4]},
            "properties": {},
            "files": [
                {
                    "attributes": {
                        "dataType": "RAWDATA",
                        "mimeType": "application/octet-stream",
                        "filename": "survey.bin",
                        "algorithm": "SHA-256",
                        "checksum": hashlib.sha256(data).hexdigest(),
                        "filesize": filesize,
                    }
                }
            ],
        }
    )


def test_stored_files_count_against_the_owners_quota(cloud: Cloud) -> None:
    owner = f"files-{uuid4().hex[:8]}"
    clients = ClientRepository(cloud.client("dynamodb"), cloud.stack.physical["ClientsTable"])
    clients.create(owner, client_id=owner)
    clients.set_quotas(owner, 5000, None)
    try:
        bootstrap.model_service(cloud.settings).register(
            ModelIn.model_validate({"name": "quota-site", "schema": {"type": "object"}}), owner
        )
    except Exception:  # registered by an earlier run of the session
        pass
    service = bootstrap.feature_service(cloud.settings, bootstrap.file_shares(cloud.settings))
    tasks = bootstrap.task_repository(cloud.settings)

    with pytest.raises(InsufficientStorage) as refused:
        service.create(feature(6000), owner)  # declares more than the 5,000 bytes its quota allows
    assert refused.value.quota == "clientStorageQuota" and refused.value.total == 5000

    created, _ = service.create(feature(len(DATA)), owner)
    (upload,) = created.uploads
    headers = {**upload.headers, "Content-Type": "application/octet-stream"}
    headers.pop("Content-Length", None)
    request = urllib.request.Request(upload.url, data=DATA, method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    key = upload.url.split("?", 1)[0].split(f"/{cloud.settings.feature_files_bucket}/", 1)[1]
    service.file_arrived(key)  # what the S3 event does
    service.file_arrived(key)  # the same event again: counted once
    assert tasks.client_ledger(owner).used == len(DATA)

    with pytest.raises(InsufficientStorage):  # 1,300 held: another 4,000 do not fit the 5,000
        service.create(feature(4000), owner)

    service.delete(created.urn, None, owner)
    assert tasks.client_ledger(owner).used == 0
