"""Every reliability test gets its own board-lock directory, so parallel workers never share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    locks = tmp_path / "locks"
    monkeypatch.setenv("HIL_LOCK_DIR", str(locks))
    return locks
