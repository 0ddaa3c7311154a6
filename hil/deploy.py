"""Deployers: how a firmware bundle gets onto a board so that its next boot runs it. Each is
built from a board's ``deploy = {backend = ..., ...}`` table (see ``DEPLOY``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Protocol

from hil.backend import BackendSpec, Factory, Registry, run_command
from hil.bundle import load_verified
from hil.errors import InfraError
from hil.power import pyocd_session

BUNDLE_PLACEHOLDER = "{bundle}"


class Deployer(Protocol):
    def deploy(self, bundle: Path) -> None: ...  # make the board boot this bundle next time


DEPLOY: Registry[Deployer] = Registry("deploy")


def register_deployer(name: str, factory: Factory[Deployer] | str) -> None:
    """Make ``deploy = {backend = name}`` build boards' deployers with ``factory(spec)``."""
    DEPLOY.register(name, factory)


class CopyDeployer:
    """Copy the bundle's images into a directory (an emulator's image dir, a board's USB mass
    storage such as Juno's MCC ``SOFTWARE/``), optionally renaming roles (``names``)."""

    def __init__(self, board: str, dest: Path, names: dict[str, str] | None = None) -> None:
        self.board, self.dest, self.names = board, dest, names or {}

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> CopyDeployer:
        spec.only("backend", "dest", "names")
        names = spec.get("names", dict, {})
        for role, name in names.items():
            if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
                raise spec.error(f"names.{role}", f"expected a plain file name, got {name!r}")
        return cls(spec.board, spec.path("dest"), names)

    def deploy(self, bundle: Path) -> None:
        if not self.dest.is_dir():
            raise InfraError(
                f"board '{self.board}': deploy destination {self.dest} is not a directory "
                "(not mounted?)"
            )
        for role, path in load_verified(self.board, bundle).files.items():
            target = self.dest / self.names.get(role, path.name)
            partial = target.with_name(target.name + ".partial")
            try:
                shutil.copyfile(path, partial)
                with partial.open("rb+") as f:
                    os.fsync(f.fileno())  # removable media: the board reads it after power-cycle
                partial.replace(target)
            except OSError as exc:
                raise InfraError(f"board '{self.board}': copying '{role}': {exc}") from exc


class CommandDeployer:
    """Run a command to deploy; every argv element equal to ``{bundle}`` becomes the bundle's
    path (a whole element of its own: no shell, no quoting)."""

    def __init__(self, board: str, argv: tuple[str, ...], timeout: float = 300.0) -> None:
        self.board, self.argv, self.timeout = board, argv, timeout

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> CommandDeployer:
        spec.only("backend", "argv", "timeout")
        argv = spec.argv("argv")
        for arg in argv:
            if BUNDLE_PLACEHOLDER in arg and arg != BUNDLE_PLACEHOLDER:
                raise spec.error(
                    "argv", f"{arg!r}: {BUNDLE_PLACEHOLDER} must be an argv element of its own"
                )
        return cls(spec.board, argv, spec.get("timeout", float, 300.0))

    def command(self, bundle: Path) -> list[str]:
        return [str(bundle) if a == BUNDLE_PLACEHOLDER else a for a in self.argv]

    def deploy(self, bundle: Path) -> None:
        run_command(self.board, "deploy", self.command(bundle), self.timeout)


class PyOcdDeployer:
    """Flash bundle images through the debug probe: ``images`` maps role -> flash address."""

    def __init__(
        self,
        board: str,
        images: dict[str, int],
        unique_id: str | None = None,
        target: str | None = None,
    ) -> None:
        self.board, self.images, self.unique_id, self.target = board, images, unique_id, target

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> PyOcdDeployer:
        spec.only("backend", "images", "unique_id", "target")
        images = spec.get("images", dict)
        for role, address in images.items():
            if not isinstance(address, int) or isinstance(address, bool) or address < 0:
                raise spec.error(f"images.{role}", f"expected a flash address, got {address!r}")
        return cls(
            spec.board, images, spec.get("unique_id", str, None), spec.get("target", str, None)
        )

    def deploy(self, bundle: Path) -> None:
        files = load_verified(self.board, bundle).files
        missing = sorted(set(self.images) - set(files))
        if missing:
            raise InfraError(f"board '{self.board}': bundle has no {', '.join(missing)} to flash")
        session = pyocd_session(self.board, self.unique_id, self.target)
        try:
            from pyocd.flash.file_programmer import FileProgrammer

            programmer: Any = FileProgrammer(session)
            for role, address in self.images.items():
                programmer.program(str(files[role]), base_address=address, file_format="bin")
        except InfraError:
            raise
        except Exception as exc:  # pyocd raises many unrelated types for flash trouble
            raise InfraError(f"board '{self.board}': pyocd flash failed: {exc}") from exc
        finally:
            session.close()


register_deployer("copy", CopyDeployer.from_spec)
register_deployer("command", CommandDeployer.from_spec)
register_deployer("pyocd", PyOcdDeployer.from_spec)
register_deployer("virtual", "hil.boards.virtual:deployer_from_spec")
register_deployer("mcc", "hil.boards.juno:deployer_from_spec")  # Juno's MCC
