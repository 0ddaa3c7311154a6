"""Golden files: a Xen pinned by what it was seen to do, for labs whose Xen has no oracle profile.

``hil run --record DIR`` writes, for each scenario of one board's run, what the boot showed
(:class:`hil.diff.behaviour.Behaviour`) and the digests of the scenario's blobs; a board with
``expect = "recorded:DIR"`` (or ``hil diff --base recorded:DIR``) is then judged against that.
A case that was not judged (infra error, not run) is never recorded: nothing is written.

Layout: ``DIR/recording.json`` (provenance and the scenario list, written last, so a directory
without it holds no recording) and ``DIR/<scenario>.json`` per scenario."""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from hil import __version__
from hil.atomic import atomic_write
from hil.config import display_path
from hil.diff.behaviour import Behaviour
from hil.errors import ConfigError
from hil.results import validate_name
from hil.scenario import Scenario

RECORDED = "recorded:"  # the prefix of ``expect`` / ``--base`` naming a recording
INDEX = "recording.json"
SCHEMA = 1


def scenario_digests(scenario: Scenario) -> dict[str, str]:
    """The sha256 of the blobs a scenario boots with: a recording holds only for these."""
    return {
        "spmc_config": hashlib.sha256(scenario.spmc_config().encode()).hexdigest(),
        "probe_plan": hashlib.sha256(scenario.probe_plan().encode()).hexdigest(),
    }


@dataclass(frozen=True)
class RecordedScenario:
    name: str
    digests: Mapping[str, str]
    behaviour: Behaviour


@dataclass(frozen=True)
class Recording:
    directory: Path
    provenance: Mapping[str, str]
    scenarios: Mapping[str, RecordedScenario]

    @property
    def label(self) -> str:
        """How reports name what a board is judged against: ``recorded:DIR``."""
        return f"{RECORDED}{display_path(self.directory)}"

    def scenario(self, scenario: Scenario) -> RecordedScenario:
        """The recorded side of ``scenario`` (ConfigError: not recorded, or the scenario's blobs
        changed since, so the recording says nothing about it)."""
        where = display_path(self.directory / INDEX)
        found = self.scenarios.get(scenario.name)
        if found is None:
            known = ", ".join(self.scenarios) or "none"
            raise ConfigError(f"{where}: scenario '{scenario.name}' not recorded (has: {known})")
        now = scenario_digests(scenario)
        changed = [role for role, digest in now.items() if found.digests.get(role) != digest]
        if changed:
            raise ConfigError(
                f"{where}: scenario '{scenario.name}' changed since it was recorded "
                f"({', '.join(changed)} differ): record it again"
            )
        return found

    def check(self, scenarios: Iterable[Scenario]) -> None:
        """Every one of ``scenarios`` is recorded as it is now (ConfigError at the first not)."""
        for scenario in scenarios:
            self.scenario(scenario)


def judge(recorded: Behaviour, observed: Behaviour, label: str) -> list[str]:
    """The unified diff recorded vs observed (Xen's lines, then the guest's); empty if equal."""
    return list(
        difflib.unified_diff(
            [*recorded.xen, *recorded.guest],
            [*observed.xen, *observed.guest],
            fromfile=f"expected ({label})",
            tofile="observed",
            lineterm="",
            n=2,
        )
    )


def load_recording(directory: Path) -> Recording:
    """The recording in ``directory``; ConfigError naming the file when it is missing or bad."""
    return _load(directory.resolve())


@lru_cache(maxsize=16)
def _load(directory: Path) -> Recording:
    index = directory / INDEX
    try:
        raw = json.loads(index.read_text(encoding="utf-8"))
        if raw.get("schema") != SCHEMA:
            raise ValueError(f"schema {raw.get('schema')!r}, expected {SCHEMA}")
        names = [validate_name("scenario", n) for n in raw["scenarios"]]
        provenance = {str(k): str(v) for k, v in raw.get("provenance", {}).items()}
    except OSError as exc:
        what = "no recording here (hil run --record makes one)" if not index.exists() else ""
        raise ConfigError(f"{display_path(index)}: {what or exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError, ConfigError) as exc:
        raise ConfigError(f"{display_path(index)}: not a recording: {exc}") from None
    scenarios = {}
    for name in names:
        path = directory / f"{name}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            digests = {str(k): str(v) for k, v in data["digests"].items()}
            scenarios[name] = RecordedScenario(name, digests, Behaviour.from_json(data))
        except OSError as exc:
            raise ConfigError(f"{display_path(path)}: cannot read: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{display_path(path)}: not a recorded scenario: {exc}") from None
    return Recording(directory, provenance, scenarios)


def check_target(directory: Path) -> None:
    """``directory`` can take a recording: absent, empty, or a recording (which is replaced);
    anything else would get scenario files among someone else's files (ConfigError)."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--record {display_path(directory)}: not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / INDEX).exists():
        raise ConfigError(f"--record {display_path(directory)}: not empty and not a recording")


def write_recording(
    directory: Path,
    observed: Sequence[tuple[Scenario, Behaviour]],
    provenance: Mapping[str, str],
) -> Recording:
    """Write ``observed`` (scenario, what it showed) as the recording in ``directory``."""
    check_target(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for scenario, behaviour in observed:
        data: dict[str, Any] = {
            "scenario": scenario.name,
            "digests": scenario_digests(scenario),
            **behaviour.to_json(),
        }
        atomic_write(directory / f"{scenario.name}.json", _dump(data))
    index = {
        "schema": SCHEMA,
        "hil": __version__,
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "provenance": dict(provenance),
        "scenarios": [scenario.name for scenario, _ in observed],
    }
    atomic_write(directory / INDEX, _dump(index))
    _load.cache_clear()
    return load_recording(directory)


def _dump(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=1) + "\n").encode()
