"""Typed errors of the store. Every message says what went wrong and what to check.

``status_code`` tells a handler how to answer: 4xx errors are the caller's fault and become a
response; everything else is raised so that Lambda retries the event and, in the end, sends it
to the dead-letter queue.

Example:
    >>> try:
    ...     raise InvalidRequestError("field 'id' must be a string")
    ... except StoreError as exc:
    ...     exc.status_code
    400
"""

from __future__ import annotations

import errno as errno_codes

_PERMISSION_HINT = (
    "permission denied: the access point's PosixUser (uid/gid) must own or be allowed to write the "
    "access point root directory (check PosixUser and RootDirectory.CreationPermissions) and no file "
    "system policy may deny s3files:ClientWrite"
)
_CONDITIONS = {
    errno_codes.ENOSPC: "no space left on the file system; free space and check the file system's "
    "storage metrics, the event is retried by Lambda",
    errno_codes.EDQUOT: "disk quota exceeded for the writing POSIX user; free space or raise the quota",
    errno_codes.EROFS: "read-only file system: grant the function role s3files:ClientWrite "
    "(AmazonS3FilesClientReadWriteAccess) and use an access point that allows writes",
    errno_codes.EIO: "I/O error on the NFS mount (transient); the invocation fails so Lambda retries it",
    errno_codes.ESTALE: "stale file handle, or a directory moved or replaced by another client while in "
    "use (transient); the invocation fails so Lambda retries it",
    errno_codes.EACCES: _PERMISSION_HINT,
    errno_codes.EPERM: _PERMISSION_HINT,
    errno_codes.ENOENT: "a path vanished (mount root missing or a directory removed concurrently); "
    "check MOUNT_ROOT and that the file system is mounted",
}


class StoreError(Exception):
    """Base class; ``status_code`` is the HTTP-style class of the failure."""

    status_code = 500


class ConfigError(StoreError):
    """An environment variable is missing or invalid (the message names it)."""


class InvalidRequestError(StoreError):
    """The event is malformed: bad id, hostile key, non-JSON payload, bad paging arguments."""

    status_code = 400


class TooLargeError(InvalidRequestError):
    """A document exceeds what one Lambda response can carry back (the message gives the limit)."""

    status_code = 413


class UnsafePathError(StoreError):
    """Something other than a directory or a regular file stands on a path under the root (a
    symlink, a FIFO, a device): it is never followed or opened, and the message names it.

    A 4xx for a reader (retrying cannot help); a writer raises it so the event is retried and
    kept in the dead-letter queue until someone removes the entry.
    """

    status_code = 409


class NotFoundError(StoreError):
    """No document exists at the requested key."""

    status_code = 404


class DeadlineError(StoreError):
    """Too little invocation time left to commit safely: refused before writing anything, or a
    stream stopped early (its staging file removed, nothing committed)."""

    status_code = 503


class MountError(StoreError):
    """The mount root is missing, not a directory, not writable or not a mount point."""


class StorageError(StoreError):
    """A file system operation failed (ENOSPC, EDQUOT, EROFS, EIO, ESTALE, EACCES...).

    ``errno`` holds the OS error number, or ``None`` when the data itself is bad (unparsable JSON).
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno

    @classmethod
    def from_os_error(cls, exc: OSError, action: str) -> StorageError:
        """Build the error for ``action`` failing with ``exc``.

        Example: ``from_os_error(OSError(errno.EROFS, "..."), "commit of a.json")`` reads
        "commit of a.json failed: read-only file system: grant the function role s3files:ClientWrite ...".
        """
        name = errno_codes.errorcode.get(exc.errno or 0, "OSError")
        condition = _CONDITIONS.get(
            exc.errno or 0,
            f"{exc.strerror or exc}; check the mount at MOUNT_ROOT and the file system permissions",
        )
        return cls(f"{action} failed: {condition} [{name}]", errno=exc.errno)
