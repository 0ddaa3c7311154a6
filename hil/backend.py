"""Plumbing shared by board back-ends (power, deploy): the spec a board's config gives a back-end,
the name -> factory registries, and running an argv (never a shell string) with a timeout."""

from __future__ import annotations

import importlib
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from hil.errors import ConfigError, InfraError

T = TypeVar("T")
_REQUIRED: Any = object()


def display_path(path: Path) -> str:
    """``path`` as the user most likely wrote it: relative to the working directory if inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class BackendSpec:
    """One ``power = {...}`` / ``deploy = {...}`` table of a board: ``backend`` picks the kind,
    the other keys are that back-end's options. Errors name the file, board and field."""

    board: str
    field: str  # "power" or "deploy"
    kind: str
    options: Mapping[str, Any]
    source: Path  # the config file it came from; relative paths in options are relative to it

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(
            f"{display_path(self.source)}: board '{self.board}': field '{self.field}.{key}': "
            f"{message}"
        )

    def only(self, *allowed: str) -> None:
        for key in self.options:
            if key not in allowed:
                raise self.error(key, f"unknown key (known: {', '.join(allowed)})")

    def get(self, key: str, kind: type[T], default: T = _REQUIRED) -> T:
        if key not in self.options:
            if default is _REQUIRED:
                raise self.error(key, "missing")
            return default
        value = self.options[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # bool is an int in Python; a timeout of `true` is still a mistake.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.error(key, f"expected {kind.__name__}, got {value!r}")
        return value  # type: ignore[return-value]

    def argv(self, key: str, default: tuple[str, ...] | None = _REQUIRED) -> tuple[str, ...]:
        """A command as a non-empty list of strings (never a shell string)."""
        if key not in self.options and default is not _REQUIRED:
            return default  # type: ignore[return-value]
        value = self.get(key, list)
        if not value or not all(isinstance(a, str) for a in value):
            raise self.error(key, f"expected a non-empty list of strings (argv), got {value!r}")
        return tuple(value)

    def path(self, key: str) -> Path:
        return (self.source.parent / self.get(key, str)).resolve()


Factory = Callable[[BackendSpec], T]


class Registry(Generic[T]):
    """Back-end kinds by config name. A factory may be given as ``"module:attribute"`` so a kind
    can be named in configs without importing its (possibly heavy or optional) module."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._factories: dict[str, Factory[T] | str] = {}

    def register(self, name: str, factory: Factory[T] | str) -> None:
        self._factories[name] = factory

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def __contains__(self, name: str) -> bool:
        return name in self._factories

    def create(self, spec: BackendSpec) -> T:
        factory = self._factories.get(spec.kind)
        if factory is None:
            raise spec.error("backend", f"unknown {self.what} back-end {spec.kind!r}")
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            try:
                factory = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise InfraError(
                    f"board '{spec.board}': {self.what} back-end '{spec.kind}' is not available "
                    f"on this machine: {exc}"
                ) from exc
        return factory(spec)  # type: ignore[operator]


def run_command(
    board: str, what: str, argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None
) -> None:
    """Run ``argv`` (no shell); any failure becomes one InfraError line naming the board."""
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **env} if env else None,
        )
    except FileNotFoundError as exc:
        raise InfraError(f"board '{board}': {what}: command {argv[0]!r} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise InfraError(
            f"board '{board}': {what}: command {argv[0]!r} still running after {timeout:g} s"
        ) from exc
    except OSError as exc:
        raise InfraError(f"board '{board}': {what}: command {argv[0]!r}: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        detail = f": {tail[-1]}" if tail else ""
        raise InfraError(
            f"board '{board}': {what}: command {argv[0]!r} exited {proc.returncode}{detail}"
        )
