from __future__ import annotations

from pathlib import Path

import pytest

from s3files_store.config import Config, get_config
from s3files_store.exceptions import ConfigError


def test_defaults() -> None:
    config = Config.from_env({"MOUNT_ROOT": "/mnt/s3data"})
    assert config == Config(
        mount_root=Path("/mnt/s3data"),
        require_mount=False,
        document_prefix="documents",
        id_field="id",
        deadline_margin_ms=3000,
        commit_timeout_seconds=900,
        staging_max_age_seconds=960,
        janitor_max_deletions=1000,
        archive_max_members=10_000,
        archive_max_bytes=10 * 1024**3,
    )
    # An unknown commit timeout is Lambda's longest, so the default age is always safe.
    assert config.min_staging_age_seconds == 960


def test_all_settings() -> None:
    config = Config.from_env(
        {
            "MOUNT_ROOT": "/mnt/data",
            "REQUIRE_MOUNT": "TRUE",
            "DOCUMENT_PREFIX": "tenant-a/docs",
            "ID_FIELD": "orderId",
            "DEADLINE_MARGIN_MS": "0",
            "COMMIT_TIMEOUT_SECONDS": "30",
            "STAGING_MAX_AGE_SECONDS": "1200",
            "JANITOR_MAX_DELETIONS": "5",
            "ARCHIVE_MAX_MEMBERS": "50",
            "ARCHIVE_MAX_BYTES": "1048576",
        }
    )
    assert (config.archive_max_members, config.archive_max_bytes) == (50, 1048576)
    assert config.require_mount is True
    assert config.document_prefix == "tenant-a/docs"
    assert config.id_field == "orderId"
    assert (config.deadline_margin_ms, config.staging_max_age_seconds, config.janitor_max_deletions) == (
        0,
        1200,
        5,
    )
    assert (config.commit_timeout_seconds, config.min_staging_age_seconds) == (30, 90)


def test_staging_age_defaults_to_the_commit_timeout_plus_grace() -> None:
    config = Config.from_env({"MOUNT_ROOT": "/mnt/s3data", "COMMIT_TIMEOUT_SECONDS": "30"})
    assert config.staging_max_age_seconds == 90


def test_staging_age_below_a_running_commit_is_refused() -> None:
    environ = {"MOUNT_ROOT": "/mnt/s3data", "COMMIT_TIMEOUT_SECONDS": "30", "STAGING_MAX_AGE_SECONDS": "89"}
    with pytest.raises(
        ConfigError, match=r"STAGING_MAX_AGE_SECONDS=89 .* at least COMMIT_TIMEOUT_SECONDS=30 \+ 60 = 90"
    ):
        Config.from_env(environ)


def test_is_frozen() -> None:
    config = Config.from_env({"MOUNT_ROOT": "/mnt/s3data"})
    with pytest.raises(AttributeError):
        config.mount_root = Path("/elsewhere")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "MOUNT_ROOT"),
        ({"MOUNT_ROOT": "mnt/s3data"}, "MOUNT_ROOT"),
        ({"MOUNT_ROOT": "/mnt/s3data", "REQUIRE_MOUNT": "maybe"}, "REQUIRE_MOUNT"),
        ({"MOUNT_ROOT": "/mnt/s3data", "DOCUMENT_PREFIX": "/abs"}, "DOCUMENT_PREFIX"),
        ({"MOUNT_ROOT": "/mnt/s3data", "DOCUMENT_PREFIX": ".staging"}, "DOCUMENT_PREFIX"),
        ({"MOUNT_ROOT": "/mnt/s3data", "DOCUMENT_PREFIX": "a/../b"}, "DOCUMENT_PREFIX"),
        ({"MOUNT_ROOT": "/mnt/s3data", "DOCUMENT_PREFIX": "a//b"}, "DOCUMENT_PREFIX"),
        ({"MOUNT_ROOT": "/mnt/s3data", "DOCUMENT_PREFIX": ""}, "DOCUMENT_PREFIX"),
        ({"MOUNT_ROOT": "/mnt/s3data", "ID_FIELD": ""}, "ID_FIELD"),
        ({"MOUNT_ROOT": "/mnt/s3data", "DEADLINE_MARGIN_MS": "soon"}, "DEADLINE_MARGIN_MS"),
        ({"MOUNT_ROOT": "/mnt/s3data", "DEADLINE_MARGIN_MS": "-1"}, "DEADLINE_MARGIN_MS"),
        ({"MOUNT_ROOT": "/mnt/s3data", "STAGING_MAX_AGE_SECONDS": "0"}, "STAGING_MAX_AGE_SECONDS"),
        ({"MOUNT_ROOT": "/mnt/s3data", "JANITOR_MAX_DELETIONS": "0"}, "JANITOR_MAX_DELETIONS"),
        (
            {"MOUNT_ROOT": "/mnt/s3data", "STAGING_MAX_AGE_SECONDS": "1" + "0" * 100},
            "STAGING_MAX_AGE_SECONDS",
        ),
        ({"MOUNT_ROOT": "/mnt/s3data", "COMMIT_TIMEOUT_SECONDS": "0"}, "COMMIT_TIMEOUT_SECONDS"),
        ({"MOUNT_ROOT": "/mnt/s3data", "COMMIT_TIMEOUT_SECONDS": "901"}, "COMMIT_TIMEOUT_SECONDS"),
        ({"MOUNT_ROOT": "/mnt/s3data", "ARCHIVE_MAX_MEMBERS": "0"}, "ARCHIVE_MAX_MEMBERS"),
        ({"MOUNT_ROOT": "/mnt/s3data", "ARCHIVE_MAX_BYTES": "10GB"}, "ARCHIVE_MAX_BYTES"),
    ],
)
def test_invalid_settings_name_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Config.from_env(environ)


def test_get_config_reads_once_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOUNT_ROOT", "/mnt/first")
    get_config.cache_clear()
    assert get_config().mount_root == Path("/mnt/first")
    monkeypatch.setenv("MOUNT_ROOT", "/mnt/second")
    assert get_config().mount_root == Path("/mnt/first")
    get_config.cache_clear()
    assert get_config().mount_root == Path("/mnt/second")
    get_config.cache_clear()
