"""One board, one user: an OS file lock per board, so two ``hil`` processes on this host never
drive the same board at once. flock() locks die with their process, so a killed run never leaves
a board locked. Boards shared across hosts use labgrid places instead (hil.labgrid)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from hil.errors import InfraError
from hil.results import validate_name


def default_lock_dir() -> Path:
    return Path(os.environ.get("HIL_LOCK_DIR") or Path.home() / ".cache" / "hil" / "locks")


class BoardBusy(InfraError):
    """The board is in use by someone else: another hil process on this host, or the holder of
    its labgrid place. Either way its cases are not run, rather than failed."""


class BoardLock:
    """``with BoardLock("juno0"):`` holds the board; ``wait_s`` > 0 waits that long for it."""

    def __init__(self, board: str, wait_s: float = 0.0, directory: Path | None = None) -> None:
        self.board = validate_name("board", board)
        self.wait_s = wait_s
        self.path = (directory or default_lock_dir()) / f"{board}.lock"
        self._fd: int | None = None

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it ("pid N on HOST"), or "unknown"."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            return "unknown"

    def acquire(self) -> BoardLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> BoardLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
