"""Check that the S3 Files mount is usable, once per execution environment.

A successful check is cached, so only the cold start pays for it (a few stat calls); after a
storage failure call :func:`invalidate` so that the next invoke checks again and reports the
precise cause (mount gone, read-only, permissions) instead of a bare errno.

Example:
    >>> check_mount(get_config(), need_write=True)  # raises MountError naming the setting to fix
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

from s3files_store.exceptions import MountError

if TYPE_CHECKING:
    from pathlib import Path

    from s3files_store.config import Config

_verified: set[tuple[Path, bool, bool]] = set()
# Under `sam local` (which sets AWS_SAM_LOCAL=true in its containers) the cause is local: SAM ignores
# FileSystemConfigs, so the fix is the env-vars file, not the deployed configuration.
_SAM_LOCAL_FIX = (
    "sam local ignores FileSystemConfigs: pass --env-vars events/env.json (it sets MOUNT_ROOT=/tmp and "
    "REQUIRE_MOUNT=false)"
)


def check_mount(config: Config, need_write: bool) -> None:
    """Raise :class:`MountError` unless ``config.mount_root`` is a usable (writable) directory."""
    cache_key = (config.mount_root, config.require_mount, need_write)
    if cache_key in _verified:
        return
    root = config.mount_root
    where = f"MOUNT_ROOT={root}"
    try:
        info = root.stat()
    except FileNotFoundError:
        if root.is_symlink():
            raise MountError(
                f"{where} is a dangling symlink (to {root.readlink()}); point MOUNT_ROOT at the "
                f"function's FileSystemConfigs LocalMountPath"
            ) from None
        if _under_sam_local():
            raise MountError(f"{where} does not exist in this container: {_SAM_LOCAL_FIX}") from None
        raise MountError(
            f"{where} does not exist: give the function a FileSystemConfigs entry for the S3 Files "
            f"access point and make its LocalMountPath equal MOUNT_ROOT"
        ) from None
    if not stat.S_ISDIR(info.st_mode):
        raise MountError(
            f"{where} is not a directory; set MOUNT_ROOT to the FileSystemConfigs LocalMountPath"
        )
    if config.require_mount and not os.path.ismount(root):
        if _under_sam_local():
            raise MountError(f"{where} is not a mount point in this container: {_SAM_LOCAL_FIX}")
        raise MountError(
            f"{where} is not a mount point: the S3 Files file system is not mounted there. Check the "
            f"function's FileSystemConfigs (access point ARN, LocalMountPath), that a mount target "
            f"exists in each function subnet's AZ and that security groups allow TCP 2049 from the "
            f"function to the mount target"
        )
    if need_write and not os.access(root, os.W_OK | os.X_OK):
        raise MountError(_not_writable(root, info))
    _verified.add(cache_key)


def invalidate() -> None:
    """Forget successful checks (call after a storage failure)."""
    _verified.clear()


def _under_sam_local() -> bool:
    return os.environ.get("AWS_SAM_LOCAL") == "true"


def _not_writable(root: Path, info: os.stat_result) -> str:
    if os.statvfs(root).f_flag & os.ST_RDONLY:
        return (
            f"MOUNT_ROOT={root} is mounted read-only: grant the function role s3files:ClientWrite "
            f"(AmazonS3FilesClientReadWriteAccess) and use an access point that allows writes"
        )
    return (
        f"MOUNT_ROOT={root} is not writable by uid {os.getuid()} gid {os.getgid()} (directory owner "
        f"{info.st_uid}:{info.st_gid}, mode {stat.S_IMODE(info.st_mode):o}): make the access point "
        f"PosixUser match RootDirectory.CreationPermissions OwnerUid/OwnerGid/Permissions"
    )
