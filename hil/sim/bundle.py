"""What a virtual board takes from a deployed firmware bundle (``hil.bundle``): the SPMC config
and the probe plan, the same two blobs the real test SPMC and probe read. Loading checks the
bundle as a flasher would (every listed file with its recorded sha256) and decodes the blobs into
memory, so later changes to the directory do not affect the deployed firmware."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hil.bundle import Bundle
from hil.ffa.spmc import SpmcConfig
from hil.probe import ProbePlan


@dataclass(frozen=True)
class SimBundle:
    path: Path
    scenario: str
    spmc: SpmcConfig
    plan: ProbePlan


def load_bundle(directory: Path) -> SimBundle:
    """Read and check the bundle in ``directory``; errors name the offending file."""
    bundle = Bundle.load(directory.resolve())
    bundle.verify()
    return SimBundle(bundle.directory, bundle.scenario, bundle.spmc_config(), bundle.probe_plan())
