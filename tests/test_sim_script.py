"""The virtual board's pure parts: fault sets, the boot script, bundle loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.errors import ConfigError, UsageError
from hil.sim.boot_script import CONSOLES, NO_BUNDLE, STAGES, BootConfig, boot_script
from hil.sim.bundle import load_bundle
from hil.sim.faults import Fault, FaultKind, FaultSet, Garbage
from hil.xen.oracle import XenOptions, expect
from tests.sim_support import PLAN, SPMC, make_bundle


def parse(faults: object) -> FaultSet:
    return FaultSet.parse(faults, STAGES, CONSOLES)  # type: ignore[arg-type]


@given(st.sampled_from(list(Garbage)), st.integers(0, 2000), st.integers(0, 3))
def test_garbage_noise_has_its_size_and_pattern(pattern: Garbage, size: int, seed: int) -> None:
    noise = Fault(FaultKind.GARBAGE, "xen", size=size, pattern=pattern, seed=seed).noise()
    assert len(noise) == size
    if pattern is Garbage.NUL:
        assert set(noise) <= {0}
    if pattern is Garbage.FF:
        assert set(noise) <= {0xFF}
    if pattern is Garbage.UTF8 and size:
        with pytest.raises(UnicodeDecodeError):
            noise.decode()


@given(st.integers(1, 1 << 16))
def test_burst_noise_is_printable_lines(size: int) -> None:
    noise = Fault(FaultKind.BURST, "xen", size=size).noise()
    assert len(noise) == size
    assert all(0x20 <= b < 0x7F or b == 0x0A for b in noise)


def test_faults_act_in_at_most_their_boots() -> None:
    faults = parse({"stall": {"stage": "xen", "boots": 2}, "reboot": {"stage": "bl1"}})
    assert [f.kind for f in faults.fire("bl1")] == [FaultKind.REBOOT]
    assert faults.fire("bl1") == []
    assert [len(faults.fire("xen")) for _ in range(3)] == [1, 1, 0]
    loop = parse({"reboot_loop": {"stage": "bl2"}})
    assert all(loop.fire("bl2") for _ in range(50))


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        ("{", "not valid JSON"),
        ([1], "expected an object"),
        ({"melt": {}}, "unknown fault 'melt'"),
        ({"stall": {}}, "stall: stage None is not one of bl1"),
        ({"stall": {"stage": "xen", "boots": -1}}, "boots must be an integer 0 to 1000000"),
        ({"garbage": {"stage": "xen", "pattern": "zeros"}}, "pattern 'zeros'"),
        ({"slow": {"ms_per_byte": "fast"}}, "ms_per_byte must be a number"),
        ({"burst": {"stage": "xen", "console": "jtag"}}, "console 'jtag'"),
        ({"disconnect": {"stage": "xen", "hold": "yes"}}, "hold must be true or false"),
        ({"stall": {"stage": "xen", "when": 1}}, "unknown field"),
    ],
)
def test_bad_fault_sets_are_refused_naming_the_field(faults: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(faults)


def test_script_stages_are_in_boot_order(tmp_path: Path) -> None:
    bundle = load_bundle(make_bundle(tmp_path))
    script = boot_script(BootConfig(stage_delay=0), bundle)
    assert [stage.name for stage in script] == list(STAGES)
    assert {stage.console for stage in script} == set(CONSOLES)
    assert all(stage.delay == 0 for stage in script)
    undeployed = boot_script(BootConfig(), None)
    assert [s.name for s in undeployed] == ["bl1", "bl2", "bl31", "spmc"]
    assert undeployed[-1].lines == (NO_BUNDLE,)
    assert all(stage.delay > 0 for stage in undeployed)


def test_bundle_blobs_are_read_back(tmp_path: Path) -> None:
    bundle = load_bundle(make_bundle(tmp_path))
    assert (bundle.spmc, bundle.plan, bundle.scenario) == (SPMC, PLAN, "two-sps")


def test_a_blob_with_a_matching_sha_but_bad_content_is_refused(tmp_path: Path) -> None:
    make_bundle(tmp_path)
    (tmp_path / "spmc-config.bin").write_bytes(b"XXXXXXXX" + bytes(40))
    manifest = (tmp_path / "bundle.json").read_text()
    good = hashlib.sha256(SPMC.encode()).hexdigest()
    bad = hashlib.sha256(b"XXXXXXXX" + bytes(40)).hexdigest()
    (tmp_path / "bundle.json").write_text(manifest.replace(good, bad))
    with pytest.raises(ConfigError, match=r"spmc-config\.bin: SPMC config blob has magic"):
        load_bundle(tmp_path)


def test_a_xen_panic_at_ffa_init_ends_the_boot(tmp_path: Path) -> None:
    options = XenOptions(tee_cmdline="optee")
    bundle = load_bundle(make_bundle(tmp_path))
    script = boot_script(BootConfig(xen=options, stage_delay=0), bundle)
    assert script[-1].name == "ffa"
    expected = expect("xen-4.22", SPMC, PLAN, options).boot.lines
    assert [line.removeprefix("(XEN) ") for line in script[-1].lines] == [
        line.text for line in expected
    ]
    assert any(line.key == "panic" for line in expected)
