from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from s3files_store.config import Config
from s3files_store.exceptions import InvalidRequestError, UnsafePathError
from s3files_store.listing import list_documents

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def populated(config: Config, tmp_path: Path) -> list[str]:
    keys = []
    for day in ("01", "02", "10"):
        for name in ("b", "a", "a.x", "c-1"):
            path = tmp_path / "documents/2026/11" / day / f"{name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
            keys.append(f"documents/2026/11/{day}/{name}.json")
    staging = tmp_path / ".staging"
    staging.mkdir()
    (staging / "abc.tmp").write_text("partial")
    (tmp_path / "documents/2026/11/01/left.tmp").write_text("partial")
    (tmp_path / "documents/.hidden.json").write_text("{}")
    (tmp_path / "documents/2026/11/01/zz-link.json").symlink_to(tmp_path / "documents/2026/11/01/a.json")
    return sorted(keys, key=lambda key: key.split("/"))


def test_list_everything_in_order(config: Config, populated: list[str]) -> None:
    keys, cursor = list_documents("documents", config, limit=1000)
    assert keys == populated
    assert cursor is None


def test_list_pages_with_cursor(config: Config, populated: list[str]) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        keys, cursor = list_documents("documents", config, limit=5, cursor=cursor)
        seen.extend(keys)
        pages += 1
        if cursor is None:
            break
        assert cursor == keys[-1]
    assert seen == populated
    assert pages == 3


def test_list_exact_page_has_no_next_cursor(config: Config, populated: list[str]) -> None:
    keys, cursor = list_documents("documents", config, limit=len(populated))
    assert len(keys) == len(populated)
    assert cursor is None


def test_list_subdirectory_prefix(config: Config, populated: list[str]) -> None:
    keys, _ = list_documents("documents/2026/11/02", config)
    assert keys == [key for key in populated if "/02/" in key]


def test_list_root_never_shows_staging(config: Config, populated: list[str]) -> None:
    keys, _ = list_documents("", config, limit=1000)
    assert keys == populated
    assert not any(".staging" in key or key.endswith(".tmp") for key in keys)


def test_list_cursor_survives_deleted_key(config: Config, populated: list[str], tmp_path: Path) -> None:
    first, cursor = list_documents("documents", config, limit=2)
    assert cursor is not None
    (tmp_path / cursor).unlink()
    rest, _ = list_documents("documents", config, limit=1000, cursor=cursor)
    assert first == populated[:2]
    assert rest == populated[2:]


def test_list_missing_prefix_is_empty(config: Config) -> None:
    assert list_documents("documents/1999", config) == ([], None)


@pytest.mark.parametrize("limit", [0, -1, 1001, "10", 1.5, True, None])
def test_list_limit_bounds(config: Config, limit: object) -> None:
    with pytest.raises(InvalidRequestError, match="limit"):
        list_documents("documents", config, limit=limit)


@pytest.mark.parametrize("bad", ["../x", "/etc", ".staging", "a\x00"])
def test_list_hostile_prefix_and_cursor(config: Config, bad: str) -> None:
    with pytest.raises(InvalidRequestError, match="prefix"):
        list_documents(bad, config)
    with pytest.raises(InvalidRequestError, match="cursor"):
        list_documents("documents", config, cursor=bad)


def test_list_symlinked_prefix_leaving_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text("{}")
    root = tmp_path / "root"
    root.mkdir()
    (root / "documents").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="documents on the mount is a symlink"):
        list_documents("documents", Config(mount_root=root))
