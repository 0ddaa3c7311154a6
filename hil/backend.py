"""Plumbing shared by board back-ends (power, deploy): the spec a board's config gives a back-end,
the name -> factory registries, and running an argv (never a shell string) with a timeout."""

from __future__ import annotations

import importlib
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from hil.config import ConfigTable
from hil.errors import InfraError

T = TypeVar("T")


@dataclass(frozen=True)
class BackendSpec(ConfigTable):
    """One ``power = {...}`` / ``deploy = {...}`` table of a board: ``backend`` picks the kind,
    the other keys are that back-end's options."""

    board: str = ""
    kind: str = ""


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

    def check(self, spec: BackendSpec) -> None:
        """Raise the ConfigError building ``spec`` would, now (when a lab loads) rather than when
        a session starts, where it would pass for a broken lab. Only factories given as
        callables are run: they parse their options and take nothing. A lazy factory's module
        may be missing here, or want a running board, so its options are checked when built."""
        factory = self._factories.get(spec.kind)
        if factory is not None and not isinstance(factory, str):
            factory(spec)

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
