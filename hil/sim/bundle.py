"""What a virtual board takes from a deployed firmware bundle: the SPMC config and the probe plan,
the same two blobs the real test SPMC and probe read. Loading checks the bundle as a flasher
would (every listed file present with its recorded sha256) and copies the blobs into memory, so
later changes to the directory do not affect the deployed firmware."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from hil.errors import ConfigError
from hil.ffa.errors import FfaFormatError
from hil.ffa.spmc import SpmcConfig
from hil.probe import ProbePlan

MANIFEST = "bundle.json"
SPMC_CONFIG = "spmc-config.bin"
PROBE_PLAN = "probe-plan.bin"


@dataclass(frozen=True)
class SimBundle:
    path: Path
    scenario: str
    spmc: SpmcConfig
    plan: ProbePlan


def _manifest(directory: Path) -> dict[str, object]:
    manifest = directory / MANIFEST
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{manifest}: cannot read: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{manifest}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise ConfigError(f"{manifest}: expected an object with a 'files' object")
    return data


def _checked_files(directory: Path, files: dict[str, object]) -> dict[str, bytes]:
    """Every listed file's bytes keyed by file name, after checking it against its sha256."""
    blobs: dict[str, bytes] = {}
    for role, entry in files.items():
        if not isinstance(entry, dict) or not {"path", "sha256"} <= entry.keys():
            raise ConfigError(f"{directory / MANIFEST}: files.{role} needs 'path' and 'sha256'")
        path = directory / str(entry["path"])
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read ({role}): {exc.strerror}") from None
        if hashlib.sha256(blob).hexdigest() != str(entry["sha256"]).lower():
            raise ConfigError(f"{path}: sha256 does not match {MANIFEST} ({role})")
        blobs[path.name] = blob
    return blobs


def load_bundle(directory: Path) -> SimBundle:
    """Read and check the bundle in ``directory``; errors name the offending file."""
    directory = directory.resolve()
    manifest = _manifest(directory)
    blobs = _checked_files(directory, manifest["files"])  # type: ignore[arg-type]
    for name in (SPMC_CONFIG, PROBE_PLAN):
        if name not in blobs:
            raise ConfigError(f"{directory / MANIFEST}: lists no {name}")
    try:
        spmc = SpmcConfig.decode(blobs[SPMC_CONFIG])
    except FfaFormatError as exc:
        raise ConfigError(f"{directory / SPMC_CONFIG}: {exc}") from None
    try:
        plan = ProbePlan.decode(blobs[PROBE_PLAN])
    except FfaFormatError as exc:
        raise ConfigError(f"{directory / PROBE_PLAN}: {exc}") from None
    return SimBundle(directory, str(manifest.get("scenario", directory.name)), spmc, plan)
