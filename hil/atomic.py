"""Writing a file so readers see either the old content or the complete new one, never a part:
a crashed or interrupted run must not leave a half-written report that looks finished."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644, sync: bool = True) -> None:
    """Write ``data`` to a temporary file next to ``path``, flush it to disk, then rename it over
    ``path`` (atomic on POSIX within one file system). On any error the temporary is removed.
    ``sync=False`` skips the fsync for files that can be made again (bundles, parsed events):
    still never half-written, just not guaranteed to survive a power cut."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); reports are meant to be served and shared.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_writable_dir(path: Path) -> None:
    """Raise the OSError that making ``path`` a directory and writing into it would raise (a
    file in the way, no permission, a read-only or full file system), without making it: an
    error found before any work leaves nothing behind."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
    if existing != path:
        # Only permission and a read-only mount can be known without making anything.
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(existing))
        return
    # Creating a file is the only test that covers permissions, read-only mounts and quotas.
    fd, probe = tempfile.mkstemp(dir=existing, prefix=".hil-write-test-")
    os.close(fd)
    os.unlink(probe)
