"""A firmware bundle: everything one board needs to boot one scenario, in one directory.

Every bundle holds the two blobs the test firmware reads (``spmc-config.bin`` for the test SPMC,
``probe-plan.bin`` for the dom0 probe) and ``bundle.json`` naming each file with its sha256, which
reports carry as provenance. Real boards add their images (bl1.bin, fip.bin, ...) beside them;
the virtual board reads the same two blobs, so both run the very same scenario bytes."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hil.atomic import atomic_write
from hil.errors import ConfigError, InfraError
from hil.ffa import FfaFormatError
from hil.ffa.spmc import SpmcConfig
from hil.probe import ProbePlan
from hil.scenario import Scenario
from hil.xen.oracle import XenOptions

MANIFEST = "bundle.json"
SPMC_CONFIG = "spmc-config.bin"
PROBE_PLAN = "probe-plan.bin"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Digests verify() read, with what stat said of each file then: a file whose inode, size and
# times are unchanged since holds the same bytes and is not read again (as git's index does). A
# bundle made while the previous case booted is verified then too (hil.ahead), so its deploy
# does not hash its megabytes on the case's time; anything replaced or written since is read.
_VERIFIED: dict[Path, tuple[tuple[int, ...], str]] = {}
_VERIFIED_LOCK = threading.Lock()
_VERIFIED_MAX = 4096  # a run's bundles are a few files each; a long run's oldest are forgotten
# A change within the file system's clock tick of the read would keep the times (git's "racy"
# files): only a file last changed longer ago than this before it was read is remembered.
# Linux stamps files from a clock that ticks every few ms; FAT's 2 s shows as whole ms.
TICK_NS = 50_000_000


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _digest(path: Path) -> str:
    """sha256 of ``path``, from the last read when stat says it has not changed since."""
    st = path.stat()
    with _VERIFIED_LOCK:
        known = _VERIFIED.get(path)
    if known is not None and known[0] == _signature(st):
        return known[1]
    read_at = time.time_ns()
    digest = sha256_file(path)
    changed = max(st.st_mtime_ns, st.st_ctime_ns)
    if changed < read_at - TICK_NS and st.st_mtime_ns % 1_000_000:
        with _VERIFIED_LOCK:
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            _VERIFIED[path] = (_signature(st), digest)
    return digest


class BundleFileError(ConfigError):
    """A file the manifest lists cannot be read or is not the one it recorded."""

    def __init__(self, role: str, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem} ({role})")
        self.role, self.path = role, path


@dataclass(frozen=True)
class Bundle:
    directory: Path
    scenario: str
    board_type: str
    files: Mapping[str, Path]  # role -> absolute path
    sha256: Mapping[str, str]  # role -> hex digest
    # How the board boots Xen with this bundle, so the oracle assumes the very same.
    xen_options: XenOptions = field(default_factory=XenOptions)
    facts: Mapping[str, str] = field(default_factory=dict)  # e.g. the Xen version built

    def path(self, role: str) -> Path:
        try:
            return self.files[role]
        except KeyError:
            raise ConfigError(f"{self.directory / MANIFEST}: bundle has no {role!r} file") from None

    def spmc_config(self) -> SpmcConfig:
        return self._decode("spmc_config", SpmcConfig.decode)

    def probe_plan(self) -> ProbePlan:
        return self._decode("probe_plan", ProbePlan.decode)

    def verify(self) -> None:
        """Check every listed file against its recorded sha256, as a flasher would."""
        for role, path in self.files.items():
            try:
                digest = _digest(path)
            except OSError as exc:
                raise BundleFileError(role, path, f"cannot read: {exc.strerror}") from None
            if digest != self.sha256[role].lower():
                raise BundleFileError(role, path, f"sha256 does not match {MANIFEST}")

    def provenance(self) -> dict[str, str]:
        files = {f"{role}:{self.files[role]}": digest for role, digest in self.sha256.items()}
        return {**files, **self.facts}

    def _decode(self, role: str, decode):  # type: ignore[no-untyped-def]
        path = self.path(role)
        try:
            return decode(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        except FfaFormatError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    @classmethod
    def load(cls, directory: Path) -> Bundle:
        manifest = directory / MANIFEST
        try:
            raw = json.loads(manifest.read_text(encoding="utf-8"))
            files = {role: directory / entry["path"] for role, entry in raw["files"].items()}
            digests = {role: entry["sha256"] for role, entry in raw["files"].items()}
            facts = {str(k): str(v) for k, v in raw.get("facts", {}).items()}
            options = XenOptions(**raw.get("xen_options", {}))
            return cls(
                directory, raw["scenario"], raw["board_type"], files, digests, options, facts
            )
        except OSError as exc:
            raise ConfigError(f"{manifest}: cannot read bundle manifest: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{manifest}: malformed bundle manifest ({exc!r})") from None


def write_bundle(
    scenario: Scenario,
    board_type: str,
    directory: Path,
    images: Mapping[str, Path] | None = None,
    xen_options: XenOptions | None = None,
    facts: Mapping[str, str] | None = None,
    in_place: Mapping[str, Path] | None = None,
) -> Bundle:
    """Write the scenario's blobs (and copy in ``images``, role -> built file) to ``directory``,
    with the Xen options the board boots and ``facts`` for the reports. ``in_place`` (role ->
    file) are large cached builds the bundle names where they are, by absolute path and sha256,
    instead of copying them into every case (the Linux guest's 40 MB kernel): verified like the
    rest, so a cached file changed since fails the deploy."""
    directory.mkdir(parents=True, exist_ok=True)
    payloads = {
        "spmc_config": (SPMC_CONFIG, scenario.spmc_config().encode()),
        "probe_plan": (PROBE_PLAN, scenario.probe_plan().encode()),
    }
    for role, source in (images or {}).items():
        payloads[role] = (source.name, source.read_bytes())
    entries = {}
    for role, (name, data) in payloads.items():
        atomic_write(directory / name, data, sync=False)
        entries[role] = {"path": name, "sha256": hashlib.sha256(data).hexdigest()}
    for role, source in (in_place or {}).items():
        path = source.resolve()
        entries[role] = {"path": str(path), "sha256": _digest(path)}
    manifest = {
        "scenario": scenario.name,
        "board_type": board_type,
        "files": entries,
        "xen_options": asdict(xen_options or XenOptions()),
        "facts": dict(facts or {}),
    }
    atomic_write(directory / MANIFEST, json.dumps(manifest, indent=2).encode(), sync=False)
    return Bundle.load(directory)


def load_verified(board: str, directory: Path) -> Bundle:
    """The bundle in ``directory`` with every file checked against its recorded sha256, for a
    board about to boot it. A bad bundle is the lab's problem here (the scenario was built
    earlier), hence InfraError naming ``board``."""
    try:
        bundle = Bundle.load(directory)
        bundle.verify()
    except BundleFileError as exc:
        raise InfraError(
            f"board '{board}': bundle file '{exc.role}' ({exc.path.name}) does not verify: {exc}"
        ) from exc
    except ConfigError as exc:
        raise InfraError(f"board '{board}': bad firmware bundle: {exc}") from exc
    return bundle
