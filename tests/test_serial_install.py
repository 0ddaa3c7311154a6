"""Exactly one installed distribution owns the ``serial`` package hil imports.

labgrid's pyserial-labgrid and pyserial both install ``serial``; with both present pip lets one
overwrite the other silently (and uninstalling either deletes the package)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import serial
import serial.rfc2217


def test_serial_rfc2217_imports() -> None:
    assert serial.rfc2217.Serial is not None


def test_serial_belongs_to_exactly_one_distribution() -> None:
    init = Path(serial.__file__).resolve()
    owners = {
        dist.metadata["Name"]
        for dist in importlib.metadata.distributions()
        if any(
            str(f).replace("\\", "/") == "serial/__init__.py" and Path(f.locate()).resolve() == init
            for f in dist.files or ()
        )
    }
    assert len(owners) == 1, f"serial/__init__.py is claimed by {sorted(owners)}"
