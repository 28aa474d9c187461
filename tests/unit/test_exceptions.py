from __future__ import annotations

import errno

import pytest

from s3files_store.exceptions import (
    ConfigError,
    DeadlineError,
    InvalidRequestError,
    MountError,
    NotFoundError,
    StorageError,
    StoreError,
)


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (InvalidRequestError, 400),
        (NotFoundError, 404),
        (DeadlineError, 503),
        (MountError, 500),
        (StorageError, 500),
        (ConfigError, 500),
    ],
)
def test_status_codes(cls: type[StoreError], status: int) -> None:
    assert issubclass(cls, StoreError)
    assert cls("x").status_code == status


def test_known_errno_names_condition_and_code() -> None:
    error = StorageError.from_os_error(OSError(errno.EROFS, "Read-only file system"), "commit of a.json")
    assert str(error).startswith("commit of a.json failed: read-only file system")
    assert "s3files:ClientWrite" in str(error)
    assert str(error).endswith("[EROFS]")
    assert error.errno == errno.EROFS


def test_unknown_errno_still_says_what_to_check() -> None:
    error = StorageError.from_os_error(OSError(errno.EISDIR, "Is a directory"), "commit of a.json")
    assert "Is a directory" in str(error)
    assert "MOUNT_ROOT" in str(error)
    assert error.errno == errno.EISDIR


def test_data_errors_have_no_errno() -> None:
    assert StorageError("bad JSON").errno is None
