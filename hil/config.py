"""Typed access to one table of a TOML config file, with the one-line errors users see:
``<file>: <where>: field '<name>': <problem>``."""

from __future__ import annotations

import math
import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hil.errors import ConfigError

T = TypeVar("T")
_REQUIRED: Any = object()
# Far above any lab or scenario file; a bigger "config" is the wrong file, and reading it whole
# would only cost memory.
MAX_CONFIG_BYTES = 4 << 20
# The longest wait a config or option may ask for. Longer is a typo (ms for s) or an attempt to
# hang a nightly, and float('inf') is no timeout at all.
MAX_SECONDS = 7 * 24 * 3600.0


def display_path(path: Path) -> str:
    """``path`` as the user most likely wrote it: relative to the working directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_config_file(path: Path, what: str = "", max_bytes: int = MAX_CONFIG_BYTES) -> bytes:
    """The bytes of a config file, refusing what is not a regular file: a FIFO or a device would
    block the open or the read for ever, a directory has no bytes. ConfigError names ``path``."""
    shown = display_path(path)
    what = f" {what}" if what else ""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of hanging.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read{what}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{shown}: cannot read{what}: not a regular file")
        try:
            # Bounded whatever st_size said: the file may grow, and /proc files claim 0 bytes.
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise ConfigError(f"{shown}: cannot read{what}: {exc.strerror}") from None
        if len(data) > max_bytes:
            raise ConfigError(f"{shown}: cannot read{what}: more than {max_bytes >> 20} MiB")
        return data


def load_toml(path: Path, what: str = "") -> dict[str, Any]:
    """``path`` parsed as TOML; every way it can be unreadable or invalid is one ConfigError."""
    data = read_config_file(path, what)
    shown = display_path(path)
    try:
        text = data.decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: not valid TOML: not UTF-8 at byte {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib names no line when the file ends inside something (an unclosed string): the
        # last line is where to look.
        where = f"at end of document, line {text.count(chr(10)) + 1}"
        message = str(exc).replace("at end of document", where)
        raise ConfigError(f"{shown}: not valid TOML: {message}") from None
    except RecursionError:
        # tomllib parses arrays and inline tables recursively.
        raise ConfigError(f"{shown}: not valid TOML: arrays or tables nested too deeply") from None


def check_seconds(value: float, allow_zero: bool = False) -> str | None:
    """Why ``value`` is not a usable duration in seconds, or None: it must be finite, positive
    (or zero when ``allow_zero``) and at most MAX_SECONDS (a week)."""
    if not math.isfinite(value):
        return f"must be a finite number of seconds, got {value!r}"
    if value < 0 or (value == 0 and not allow_zero):
        return f"must be {'at least 0' if allow_zero else 'positive'}, got {value:g}"
    if value > MAX_SECONDS:
        return f"must be at most {MAX_SECONDS:g} s (a week), got {value:g}"
    return None


@dataclass(frozen=True)
class ConfigTable:
    source: Path  # relative paths in the table are relative to this file
    where: str  # e.g. "board 'juno0'"; empty for a file's top level
    prefix: str  # dotted path of this table inside the file, e.g. "power."
    data: Mapping[str, Any]

    def error(self, key: str, message: str) -> ConfigError:
        where = f" {self.where}:" if self.where else ""
        return ConfigError(
            f"{display_path(self.source)}:{where} field '{self.prefix}{key}': {message}"
        )

    def only(self, *allowed: str) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(key, f"unknown key (known: {', '.join(allowed)})")

    def get(self, key: str, kind: type[T], default: T = _REQUIRED) -> T:
        if key not in self.data:
            if default is _REQUIRED:
                raise self.error(key, "missing")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            # TOML integers have no size limit; one past float's range is no number of seconds.
            value = float(value) if abs(value) < 2**1023 else math.inf
        # bool is an int in Python; a timeout of `true` is still a mistake.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.error(key, f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {value!r}")
        # TOML spells nan and inf; no setting of hil means either.
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(key, f"expected a finite number, got {value!r}")
        return value  # type: ignore[return-value]

    def seconds(self, key: str, default: float = _REQUIRED, allow_zero: bool = False) -> float:
        """A duration: a finite number of seconds, positive (or zero) and at most a week."""
        value = self.get(key, float, default)
        problem = check_seconds(value, allow_zero)
        if problem is not None and key in self.data:
            raise self.error(key, problem)
        return value

    def table(self, key: str, default: Mapping[str, Any] | None = None) -> ConfigTable:
        data = self.get(key, dict, dict(default) if default is not None else _REQUIRED)
        return ConfigTable(self.source, self.where, f"{self.prefix}{key}.", data)

    def argv(self, key: str, default: tuple[str, ...] | None = _REQUIRED) -> tuple[str, ...]:
        """A command as a non-empty list of strings (never a shell string)."""
        if key not in self.data and default is not _REQUIRED:
            return default  # type: ignore[return-value]
        value = self.get(key, list)
        if not value or not all(isinstance(a, str) for a in value):
            raise self.error(key, f"expected a non-empty list of strings (argv), got {value!r}")
        return tuple(value)

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(key, list, list(default))
        if not all(isinstance(a, str) for a in value):
            raise self.error(key, f"expected a list of strings, got {value!r}")
        return tuple(value)

    def path(self, key: str) -> Path:
        return (self.source.parent / self.get(key, str)).resolve()

    def optional_path(self, key: str) -> Path | None:
        return self.path(key) if key in self.data else None


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}
