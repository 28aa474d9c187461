"""Suite-wide guards (no test may reach real AWS) and the handler fixtures the test folders share."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from lambda_support import FakeContext, load_handler

from s3files_store import mount
from s3files_store.config import get_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from types import ModuleType

# Set at import time, before any test module creates a boto3 client or imports a handler: fake
# credentials and a region, and no shared config files, so nothing can pick up a real account.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "SAM_CLI_TELEMETRY": "0",
    "POWERTOOLS_METRICS_NAMESPACE": "S3FilesLambdaTest",
    "POWERTOOLS_SERVICE_NAME": "s3files-test",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def writer() -> ModuleType:
    return load_handler("writer")


@pytest.fixture(scope="session")
def reader() -> ModuleType:
    return load_handler("reader")


@pytest.fixture(scope="session")
def janitor() -> ModuleType:
    return load_handler("janitor")


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The mount root, passed the way Lambda does: environment read by the handler at invoke time.

    A subdirectory of tmp_path, so tests can prove nothing was written beside it.
    """
    directory = tmp_path / "s3data"
    directory.mkdir()
    monkeypatch.setenv("MOUNT_ROOT", str(directory))
    monkeypatch.setenv("REQUIRE_MOUNT", "false")
    get_config.cache_clear()
    mount.invalidate()
    yield directory
    get_config.cache_clear()
    mount.invalidate()
