"""Typed access to one table of a TOML config file, with the one-line errors users see:
``<file>: <where>: field '<name>': <problem>``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hil.errors import ConfigError

T = TypeVar("T")
_REQUIRED: Any = object()


def display_path(path: Path) -> str:
    """``path`` as the user most likely wrote it: relative to the working directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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
            value = float(value)
        # bool is an int in Python; a timeout of `true` is still a mistake.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.error(key, f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {value!r}")
        return value  # type: ignore[return-value]

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
