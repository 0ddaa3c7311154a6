"""Errors a user sees as one line, each mapped to the exit code the design fixes:
0 pass, 1 a check failed / violation, 2 usage or config error, 3 infrastructure failure."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    INFRA = 3


class HilError(Exception):
    """An error reported to the user as one line, naming the file / board / field concerned."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(HilError):
    exit_code = ExitCode.USAGE


class ConfigError(HilError):
    """A bad lab.toml, boards/*.toml or scenario file."""

    exit_code = ExitCode.USAGE


class InfraError(HilError):
    """The lab is broken (board did not boot, console lost), not the firmware."""

    exit_code = ExitCode.INFRA


def os_error_text(exc: OSError) -> str:
    """An OSError as one line: what failed, and on which path ("No space left on device: x")."""
    what = exc.strerror or str(exc)
    return f"{what}: {exc.filename}" if exc.filename is not None else what
