"""Small C helpers for hot loops: compiled with the system C compiler at first use into the
user's cache, keyed by the source, the compiler and the machine, and loaded with ctypes. Each
user keeps a pure-Python path that gives the same results, taken when there is no compiler, the
build fails or its ``HIL_<NAME>_PURE=1`` is set (tests compare the two)."""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir(area: str) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hil" / area


def build(source: bytes, stem: str, area: str) -> Path:
    """The shared library for ``source``, compiled once per machine into ``cache_dir(area)``:
    written under a temporary name and renamed, so processes building it at once each see a
    whole file or none."""
    name = os.environ.get("CC") or "cc"
    compiler = shutil.which(name)
    if compiler is None:
        raise OSError(f"no C compiler ({name}) found")
    # The compiler is in the key: a firmware shell's CC (a cross compiler) must not leave a
    # library this machine cannot load where every later process looks for its own.
    key = b"\0".join([source, compiler.encode(), platform.machine().encode()])
    target = cache_dir(area) / f"{stem}-{hashlib.sha256(key).hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.stem + ".", suffix=".so.tmp", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run(
            [compiler, "-O3", "-shared", "-fPIC", "-o", tmp, "-x", "c", "-"],
            input=source,
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip().splitlines()
            raise OSError(f"{compiler} failed: {error[0] if error else done.returncode}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load(
    source: Path, area: str, pure_env: str, declare: Callable[[ctypes.CDLL], None]
) -> tuple[ctypes.CDLL | None, str]:
    """``(library, why)``: ``source`` built and loaded, its functions typed by ``declare``; or
    ``(None, why)`` when the caller is to take its pure-Python path (``pure_env`` set to 1, no
    compiler, a failed build)."""
    if os.environ.get(pure_env) == "1":
        return None, f"pure Python ({pure_env}=1)"
    try:
        path = build(source.read_bytes(), source.stem.lstrip("_"), area)
        lib = ctypes.CDLL(str(path))
        declare(lib)
    except (OSError, RuntimeError, AttributeError, subprocess.SubprocessError) as exc:
        # RuntimeError: no home directory for the cache; AttributeError: a missing function.
        return None, f"pure Python (the compiled helper is not available: {exc})"
    return lib, f"compiled ({path})"


class Helper:
    """One C helper, loaded at first use and kept for the process (forks too)."""

    def __init__(
        self, source: Path, area: str, pure_env: str, declare: Callable[[ctypes.CDLL], None]
    ) -> None:
        self._args = (source, area, pure_env, declare)
        self._loaded: tuple[ctypes.CDLL | None, str] | None = None

    def library(self) -> ctypes.CDLL | None:
        """The loaded helper, or None for the pure-Python path (``describe()`` says why)."""
        if self._loaded is None:
            self._loaded = load(*self._args)
        return self._loaded[0]

    def describe(self) -> str:
        """Which path runs, and why."""
        self.library()
        assert self._loaded is not None
        return self._loaded[1]

    def reset(self) -> None:
        """Forget the loaded helper (tests switch paths with the environment)."""
        self._loaded = None
