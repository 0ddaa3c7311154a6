"""One board, one user: an OS file lock per board, so two ``hil`` processes on this host never
drive the same board at once, whichever users run them. flock() locks die with their process, so
a killed run never leaves a board locked. Boards shared across hosts use labgrid places instead
(hil.labgrid).

The locks live in one directory for the whole host: ``$HIL_LOCK_DIR`` if set, else
``/run/lock/hil`` (``/var/tmp/hil-locks`` where /run/lock is not open to every user), made
world-writable and sticky like /tmp. Everyone can create a lock file there and nobody can remove
another's. A lock file is opened without following symbolic links and only if it is a plain file
with one name, so a link planted under a board's lock name cannot make hil write elsewhere; hil
overwrites only the first ``HOLDER_BYTES`` of it, never truncates it, and what it reads back
from it (the holder) is shown escaped: anyone on the host can write there."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import stat
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from hil.errors import InfraError
from hil.results import validate_name
from hil.terminal import escape

LOCK_DIR_ENV = "HIL_LOCK_DIR"
# In order of preference; the first one every user of the host would pick too (see shared_dir).
SHARED_DIRS = (Path("/run/lock/hil"), Path("/var/tmp/hil-locks"))
HOLDER_BYTES = 256  # the holder record at the start of a lock file; the rest is never read
_SHARED_MODE = 0o1777  # everyone may create, only the owner may remove (sticky)
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK


def shared_dir(candidates: Sequence[Path] | None = None) -> Path:
    """The first candidate that exists, or that any user could create (its parent is
    world-writable and sticky, like /run/lock and /var/tmp). The answer depends on the host, not
    on who asks: two users must meet in the same directory to exclude each other."""
    candidates = candidates or SHARED_DIRS
    for candidate in candidates:
        if os.path.lexists(candidate):
            return candidate
        try:
            mode = os.stat(candidate.parent).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode) and mode & _SHARED_MODE == _SHARED_MODE:
            return candidate
    return candidates[-1]


def default_lock_dir() -> tuple[Path, bool]:
    """(directory, whether hil shares it between users and so makes it mode 1777)."""
    override = os.environ.get(LOCK_DIR_ENV)
    if override:
        return Path(override), False
    return shared_dir(), True


def _prepare_dir(directory: Path, shared: bool) -> None:
    try:
        if shared:
            os.mkdir(directory, _SHARED_MODE)
            os.chmod(directory, _SHARED_MODE)  # mkdir's mode went through the umask
        else:
            directory.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(directory)
    except FileExistsError:
        pass  # a file in the way is found below
    except OSError as exc:
        raise InfraError(f"board lock directory {directory}: {exc.strerror}") from None
    try:
        # The shared directory must be hil's own, not a link someone planted; an override is
        # the user's choice and may be a link.
        info = os.lstat(directory) if shared else os.stat(directory)
    except OSError as exc:
        raise InfraError(f"board lock directory {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise InfraError(f"board lock directory {directory}: not a directory")
    if shared and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != _SHARED_MODE:
        # Ours but not open to every user (made by hand, or by a umask): make it so.
        os.chmod(directory, _SHARED_MODE)
        info = os.lstat(directory)
    writable_by_all = info.st_mode & 0o002
    if shared and writable_by_all and not info.st_mode & stat.S_ISVTX:
        # Anyone could remove a held lock file and let a second hil in.
        raise InfraError(
            f"board lock directory {directory}: world-writable but not sticky (chmod 1777 it)"
        )


def _open_lock_file(path: Path) -> int:
    """The lock file's descriptor: opened without O_CREAT when it exists (the kernel refuses
    O_CREAT on another user's file in a sticky directory), created 0666 when it does not."""
    while True:
        try:
            return _open_existing(path)
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o666)
        except FileExistsError:
            continue  # made by someone else meanwhile: open theirs
        except OSError as exc:
            raise InfraError(f"board lock file {path}: {exc.strerror}") from None
        os.fchmod(fd, 0o666)  # every user's hil must be able to open it (umask)
        return fd


def _open_existing(path: Path) -> int:
    try:
        try:
            fd = os.open(path, os.O_RDWR | _OPEN_FLAGS)
        except PermissionError:
            fd = os.open(path, os.O_RDONLY | _OPEN_FLAGS)  # flock needs no write access
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InfraError(
                f"board lock file {path} is a symbolic link: not followed (remove it)"
            ) from None
        raise InfraError(f"board lock file {path}: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise InfraError(
            f"board lock file {path} is not a plain file with one name: not used (remove it)"
        )
    return fd


def _holder_record(text: str) -> bytes:
    data = text.encode("utf-8")[: HOLDER_BYTES - 1]
    return data.ljust(HOLDER_BYTES - 1, b" ") + b"\n"


def _whoami() -> str:
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = f"uid {os.geteuid()}"
    return f"pid {os.getpid()} on {os.uname().nodename} (user {user})"


class BoardBusy(InfraError):
    """The board is in use by someone else: another hil process on this host, or the holder of
    its labgrid place. Either way its cases are not run, rather than failed."""


class BoardLock:
    """``with BoardLock("juno0"):`` holds the board; ``wait_s`` > 0 waits that long for it."""

    def __init__(self, board: str, wait_s: float = 0.0, directory: Path | None = None) -> None:
        self.board = validate_name("board", board)
        self.wait_s = wait_s
        if directory is None:
            self.directory, self._shared = default_lock_dir()
        else:
            self.directory, self._shared = directory, False
        self.path = self.directory / f"{board}.lock"
        self._fd: int | None = None

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it ("pid N on HOST (user U)"), or "unknown";
        escaped, since any user of the host can write it."""
        try:
            fd = os.open(self.path, os.O_RDONLY | _OPEN_FLAGS)
        except OSError:
            return "unknown"
        try:
            text = os.read(fd, HOLDER_BYTES).decode("utf-8", "replace").strip()
        except OSError:
            return "unknown"
        finally:
            os.close(fd)
        return escape(text) or "unknown"

    def acquire(self) -> BoardLock:
        _prepare_dir(self.directory, self._shared)
        fd = _open_lock_file(self.path)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise BoardBusy(f"board {self.board} is in use by {self.holder()}") from None
                time.sleep(0.1)
        self._fd = fd
        self._write_holder(_whoami())
        return self

    def release(self) -> None:
        if self._fd is not None:
            self._write_holder("")
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def _write_holder(self, text: str) -> None:
        """Best effort: the lock is the flock, the text only tells others who holds it (a file
        another user made read-only to us just shows "unknown")."""
        assert self._fd is not None
        with contextlib.suppress(OSError):
            os.pwrite(self._fd, _holder_record(text), 0)

    def __enter__(self) -> BoardLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
