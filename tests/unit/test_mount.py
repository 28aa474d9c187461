from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from s3files_store import mount
from s3files_store.config import Config
from s3files_store.exceptions import MountError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def test_usable_directory_passes(tmp_path: Path) -> None:
    mount.check_mount(Config(mount_root=tmp_path), need_write=True)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(MountError, match=r"does not exist.*FileSystemConfigs.*LocalMountPath"):
        mount.check_mount(Config(mount_root=tmp_path / "absent"), need_write=False)


def test_under_sam_local_the_fix_is_the_env_vars_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # sam local sets AWS_SAM_LOCAL=true in its containers and ignores FileSystemConfigs: the template's
    # MOUNT_ROOT=/mnt/s3data and REQUIRE_MOUNT=true are a local mistake, fixed by --env-vars.
    monkeypatch.setenv("AWS_SAM_LOCAL", "true")
    with pytest.raises(MountError, match=r"does not exist in this container: .*--env-vars events/env.json"):
        mount.check_mount(Config(mount_root=tmp_path / "absent"), need_write=False)
    with pytest.raises(MountError, match=r"not a mount point in this container: .*--env-vars events/env"):
        mount.check_mount(Config(mount_root=tmp_path, require_mount=True), need_write=False)


def test_outside_sam_local_the_fix_is_the_function_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SAM_LOCAL", raising=False)
    with pytest.raises(MountError, match="FileSystemConfigs entry") as missing:
        mount.check_mount(Config(mount_root=tmp_path / "absent"), need_write=False)
    assert "--env-vars" not in str(missing.value)


def test_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(MountError, match="dangling symlink"):
        mount.check_mount(Config(mount_root=tmp_path / "link"), need_write=False)


def test_file_instead_of_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(MountError, match="not a directory"):
        mount.check_mount(Config(mount_root=tmp_path / "file"), need_write=False)


def test_not_a_mount_point_when_required(tmp_path: Path) -> None:
    with pytest.raises(MountError, match=r"not a mount point.*TCP 2049"):
        mount.check_mount(Config(mount_root=tmp_path, require_mount=True), need_write=False)


def test_real_mount_point_passes_when_required(tmpfs: Callable[..., Path]) -> None:
    mount.check_mount(Config(mount_root=tmpfs(), require_mount=True), need_write=True)


def test_permission_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, for whom access(W_OK) is true on any writable file system whatever the
    # mode: the non-root answer is simulated by patching os.access.
    tmp_path.chmod(0o555)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(MountError, match=r"not writable by uid .*mode 555.*PosixUser.*CreationPermissions"):
        mount.check_mount(Config(mount_root=tmp_path), need_write=True)
    tmp_path.chmod(0o755)


def test_read_only_directory_is_fine_for_readers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    mount.check_mount(Config(mount_root=tmp_path), need_write=False)


def test_real_read_only_mount(tmpfs: Callable[..., Path], remount_read_only: Callable[[Path], None]) -> None:
    root = tmpfs()
    remount_read_only(root)
    with pytest.raises(MountError, match=r"mounted read-only.*s3files:ClientWrite"):
        mount.check_mount(Config(mount_root=root), need_write=True)
    mount.check_mount(Config(mount_root=root), need_write=False)


def test_success_is_cached_until_invalidated(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    config = Config(mount_root=root)
    mount.check_mount(config, need_write=True)
    root.rmdir()
    mount.check_mount(config, need_write=True)  # warm invoke: no file system calls
    mount.invalidate()
    with pytest.raises(MountError, match="does not exist"):
        mount.check_mount(config, need_write=True)


def test_failure_is_not_cached(tmp_path: Path) -> None:
    root = tmp_path / "later"
    config = Config(mount_root=root)
    with pytest.raises(MountError):
        mount.check_mount(config, need_write=True)
    root.mkdir()
    mount.check_mount(config, need_write=True)
