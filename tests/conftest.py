"""Suite-wide guards (no test may reach real AWS) and the handler fixtures the test folders share."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from lambda_support import FakeContext, load_handler

if TYPE_CHECKING:
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
