"""Evidence comes only from where it can come from, and incomplete evidence is never a verdict:
``hil run`` against virtual boards whose consoles carry text that must not be judged (a plausible
transcript on the secure console, a guest's panic, an SP's error line), boots merged by noise,
and evidence that was damaged or may be missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hil.boards import platform
from hil.bundle import write_bundle
from hil.cli import main
from hil.scenario import SCENARIO_DIR, load_scenarios
from hil.sim.boot_script import EOL, BootConfig, boot_script
from hil.sim.bundle import SimBundle
from hil.sim.launcher import VirtualBoardProcess
from tests.labs import BOARDS_DIR, toml_value
from tests.reliability.support import Outcome, hil_run, write_lab

# 4.21 and 4.22 differ on it: 4.21 repeats the bit-15 warning per SP and counts every SP.
SCENARIO = "several-non-secure"


def run(
    tmp_path: Path,
    faults: dict[str, Any],
    xen: str = "xen-4.22",
    expect: str = "xen-4.22",
    **lab: Any,
) -> Outcome:
    """SCENARIO on a virtual board whose Xen behaves as ``xen``; the lab expects ``expect``."""
    power = {"backend": "virtual", "stage_delay": 0, "faults": faults, "xen": xen}
    extra = {"power": power, "xen_profile": expect}
    lab_file = write_lab(tmp_path / "lab", extra=extra, **lab)
    return hil_run(lab_file, tmp_path / "results", scenarios=(SCENARIO,))


def transcript_of(profile: str) -> str:
    """The whole normal-world output of a ``profile`` Xen booting SCENARIO (TF-A banner, Xen's
    lines, the probe's), as the virtual board prints it."""
    (scenario,) = load_scenarios(SCENARIO_DIR, [SCENARIO])
    bundle = SimBundle(Path("."), SCENARIO, scenario.spmc_config(), scenario.probe_plan())
    stages = boot_script(BootConfig(profile, stage_delay=0), bundle)
    return "".join(line + EOL for stage in stages if stage.console == "ns" for line in stage.lines)


def test_a_plausible_transcript_on_the_secure_console_never_passes_a_wrong_xen(
    tmp_path: Path,
) -> None:
    # The board's Xen behaves as 4.21; the lab expects 4.22. Before its probe runs, the secure
    # console prints a TF-A banner and a whole, well-formed 4.22 boot.
    fake = transcript_of("xen-4.22")
    faults = {"text": {"stage": "probe", "console": "secure", "text": fake}}
    out = run(tmp_path, faults, xen="xen-4.21")
    assert (out.exit_code, out.case["verdict"]) == (1, "fail"), out.case["message"]
    assert "+(XEN) ffa: Firmware is not using bit 15 convention for IDs !!" in out.case["diff"]


def lines_of(stage: str, profile: str) -> tuple[str, ...]:
    """What a ``profile`` Xen's board prints in ``stage`` of SCENARIO."""
    (scenario,) = load_scenarios(SCENARIO_DIR, [SCENARIO])
    bundle = SimBundle(Path("."), SCENARIO, scenario.spmc_config(), scenario.probe_plan())
    return next(
        s.lines for s in boot_script(BootConfig(profile, stage_delay=0), bundle) if s.name == stage
    )


@pytest.mark.parametrize(
    ("console", "text"),
    [
        # A guest's output relayed by Xen, whatever it holds, is neither Xen's nor a panic.
        ("ns", "(d1) (XEN) ffa: Firmware is not using bit 15 convention for IDs !!"),
        ("ns", "(XEN) DOM2: (XEN) ffa: Secure partition with id 0x0042 cannot be used"),
        ("ns", "(d1) Kernel panic - not syncing: Attempted to kill init!"),
        ("ns", "(XEN) DOM1: (XEN) Panic on CPU 0:"),
        # An SP's log line on the secure console mentioning an SError.
        ("secure", "SP 8001: SError injected by test case 7"),
    ],
)
def test_what_a_guest_or_an_sp_prints_is_never_xen_nor_a_panic(
    tmp_path: Path, console: str, text: str
) -> None:
    out = run(
        tmp_path, {"text": {"stage": "probe", "line": 3, "console": console, "text": text + EOL}}
    )
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 1)


@pytest.mark.parametrize(
    ("console", "text"),
    [
        ("ns", "(XEN) Panic on CPU 0:"),
        ("ns", "[    2.000000] Kernel panic - not syncing: Attempted to kill init!"),  # dom0's
        ("secure", "Panic: SP 8001 aborted"),  # Hafnium's panic()
        ("secure", "E/TC:0 0 Panic at core/kernel/panic.c:32 <__do_panic>"),  # OP-TEE's
    ],
)
def test_the_boards_own_panic_is_a_fail_at_once(tmp_path: Path, console: str, text: str) -> None:
    out = run(
        tmp_path, {"text": {"stage": "probe", "line": 3, "console": console, "text": text + EOL}}
    )
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (1, "fail", 1)
    assert "panic" in out.case["message"]


def test_a_reboot_cutting_xens_line_short_never_merges_two_boots(tmp_path: Path) -> None:
    # Xen is half-way through a line when the board resets by itself: the new boot's TF-A banner
    # follows on the same line. Merged, the two boots' FF-A lines would read as a Xen that says
    # everything twice.
    faults = {
        "text": {"stage": "dom0", "line": 1, "text": "(XEN) Loading d0 kern", "boots": 1},
        "reboot": {"stage": "dom0", "line": 1},
    }
    out = run(tmp_path, faults)
    assert b"(XEN) Loading d0 kernNOTICE:  Booting Trusted Firmware" in out.raw("v0", SCENARIO)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 1)


def test_a_damaged_xen_line_is_not_judged_and_the_boot_is_retried(tmp_path: Path) -> None:
    # One byte of "Secure partition with id 0x0011 cannot be used" lost to a framing error.
    corrupt = {"corrupt": {"stage": "ffa", "line": 13, "boots": 1}}
    out = run(tmp_path, corrupt)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 2)
    first = out.case["boots"][0]
    assert first["outcome"] == "infra_error" and "damaged Xen line" in first["error"]


@pytest.mark.parametrize(
    ("profile", "stage", "line", "offset", "why"),
    [
        ("xen-4.22", "ffa", 13, None, "damaged Xen line"),
        ("xen-4.22", "ffa", 12, 2, "unreadable line among Xen's"),  # its prefix: "(X\xffN)"
        ("xen-4.22", "probe", -2, None, "damaged probe line"),
        ("xen-4.22", "probe", -2, 3, "unreadable line among Xen's"),  # "HIL\xffROBE partinfo"
        ("none", "probe", -2, 3, "transcript is incomplete: 11 of 12 partinfo lines"),
    ],
)
def test_damaged_evidence_is_an_infra_error_never_a_verdict(
    tmp_path: Path, profile: str, stage: str, line: int, offset: int | None, why: str
) -> None:
    """Every boot damages the same line: bounded retries, then exit 3 saying why. (Before, a
    damaged line vanished: Xen or the probe looked as if it had not printed it, a FAIL.)"""
    line %= len(lines_of(stage, profile))
    corrupt = {"stage": stage, "line": line, **({} if offset is None else {"offset": offset})}
    out = run(tmp_path, {"corrupt": corrupt}, xen=profile, expect=profile, boot_attempts=2)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (3, "infra_error", 2)
    assert "not judged" in out.case["message"] and why in out.case["message"]


@pytest.mark.parametrize(
    ("stage", "line", "kept", "why"),
    [
        # "(XEN) ffa: Firmware is not using bit 15 ..." loses its tail and its end: what is left is
        # glued in front of "(XEN) ffa: Secure partition with id 0x0011 cannot be used".
        ("ffa", 12, 20, "the end of a Xen line was lost"),
        # ... and loses only its " !!" and its end.
        ("ffa", 12, -3, "the end of a Xen line was lost"),
    ],
)
def test_a_line_glued_to_the_next_is_not_judged_and_the_boot_is_retried(
    tmp_path: Path, stage: str, line: int, kept: int, why: str
) -> None:
    """A line end lost with part of its line (a UART overrun) glues two evidence lines into one
    that no message matches: both vanished, a FAIL (or a PASS, when the lost message was the one
    that makes a wrong Xen differ). Only printable bytes are left, so nothing looks damaged."""
    lines = lines_of(stage, "xen-4.22")
    line %= len(lines)
    kept %= len(lines[line])
    drop = {"stage": stage, "line": line, "offset": kept, "size": len(lines[line]) - kept + 2}
    out = run(tmp_path, {"drop": {**drop, "boots": 1}})
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 2)
    first = out.case["boots"][0]
    assert first["outcome"] == "infra_error", first
    assert "two lines glued together" in first["error"] and why in first["error"]


@pytest.mark.parametrize(
    "text",
    [
        "(XEN) ffa: Secure partition with id 0x0011 cannot be used",  # an FF-A line after the probe
        "(XEN) ffa: Firmware is not \xff using bit 15 convention",  # a damaged Xen line
        "NOTICE:  Booting Trusted Firmware",  # the board reboots right after the probe
    ],
)
def test_what_the_board_prints_after_the_probes_end_is_never_judged(
    tmp_path: Path, text: str
) -> None:
    """The boot judged ends with the probe's end line. What follows reached the host a little
    before or after the case looked, so judging it would make the verdict depend on timing."""
    after = len(lines_of("probe", "xen-4.22"))
    out = run(tmp_path, {"text": {"stage": "probe", "line": after, "text": text + EOL}})
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (0, "pass", 1)
    case_dir = out.run_dir / "v0" / SCENARIO
    window = json.loads((case_dir / "evidence.json").read_text(encoding="utf-8"))
    assert out.raw("v0", SCENARIO)[: window["end"]].endswith(b"HILPROBE end" + EOL.encode())


def attached_lab(path: Path, board: VirtualBoardProcess, deploy: dict[str, Any]) -> Path:
    """A lab whose one board is the running virtual ``board``, deployed to with ``deploy``."""
    control = {"backend": "virtual", "control": f"127.0.0.1:{board.control.port}"}
    consoles = {c: board.console_url_for(c) for c in ("ns", "secure")}
    path.write_text(
        f"boards_dir = {toml_value(str(BOARDS_DIR))}\nboot_attempts = 1\n[[board]]\n"
        'name = "vb0"\ntype = "virtual"\nxen_profile = "xen-4.22"\n'
        f"consoles = {toml_value(consoles)}\npower = {toml_value(control)}\n"
        f"deploy = {toml_value(deploy)}\n"
    )
    return path


def test_a_boot_of_another_bundle_than_the_one_deployed_is_never_judged(tmp_path: Path) -> None:
    # Three scenarios Xen 4.22 treats alike (its SP cache refuses both SPMC lists), two of which
    # the probe asks the same questions: a deploy that never reached the board (here a command
    # that does nothing) left it booting the first one's bundle.
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name in ("fpi-size-4096", "page-overflow-41"):
        shutil.copy(SCENARIO_DIR / f"{name}.toml", scenarios)
    text = (SCENARIO_DIR / "fpi-size-4096.toml").read_text()
    (scenarios / "v1-0-guest.toml").write_text(f'guest_version = "1.0"\n{text}')
    board = VirtualBoardProcess.start("vb0", workdir=tmp_path / "board", stage_delay=0)
    try:
        deploy = {"backend": "virtual", "control": f"127.0.0.1:{board.control.port}"}
        good = attached_lab(tmp_path / "good.toml", board, deploy)
        broken = attached_lab(
            tmp_path / "broken.toml", board, {"backend": "command", "argv": ["true"]}
        )
        runs: list[tuple[int, str]] = []
        for lab, scenario in (
            (good, "fpi-size-4096"),
            (broken, "page-overflow-41"),
            (broken, "v1-0-guest"),
        ):
            argv = ["run", "--lab", str(lab), "--scenarios-dir", str(scenarios)]
            code = main([*argv, "--results", str(tmp_path / scenario), "--scenario", scenario])
            (run_dir,) = [p for p in (tmp_path / scenario).iterdir() if not p.is_symlink()]
            (case,) = json.loads((run_dir / "summary.json").read_text())["run"]["cases"]
            runs.append((code, case["message"]))
    finally:
        board.stop()
    assert runs[0] == (0, "behaves as xen-4.22")
    not_judged = "board 'vb0': not judged: the board did not boot the bundle deployed: "
    assert runs[1] == (
        3,
        not_judged + "the SPMC that booted says 'version=0x00010001 count=1 fpi_size=4096 "
        "data_len=4096 supported=9', the bundle deployed serves 'version=0x00010001 count=41 "
        "fpi_size=100 data_len=4096 supported=9'",
    )
    assert runs[2] == (
        3,
        not_judged + "the probe asked for other FF-A versions than the bundle's plan",
    )


def test_a_printk_of_the_mediators_the_profile_lacks_is_never_skipped(tmp_path: Path) -> None:
    # A patched or newer Xen says something about FF-A that no profile says: the guest's view
    # is the same, but this Xen does not behave as xen-4.22 (a guest's line saying it is fine).
    extra = "(XEN) ffa: SP 0x8001 has no UUID, treated as Nil\n(d1) ffa: relayed from a guest\n"
    faults = {"text": {"stage": "ffa", "line": 2, "console": "ns", "text": extra}}
    out = run(tmp_path, faults)
    assert (out.exit_code, out.case["verdict"]) == (1, "fail"), out.case["message"]
    diff = [line for line in out.case["diff"] if not line.startswith(("+++", "---"))]
    changed = [line for line in diff if line[:1] in "+-"]
    assert changed == ["+(XEN) ffa: SP 0x8001 has no UUID, treated as Nil"]


def test_a_dropped_sps_line_lost_whole_on_the_uart_is_not_judged(tmp_path: Path) -> None:
    # 4.21 prints the bit-15 header before each dropped SP's line; an overrun lost one such
    # line whole, end included, so nothing is glued: the header left alone says it is missing.
    lines = lines_of("ffa", "xen-4.21")
    index = next(i for i, line in enumerate(lines) if "with id 0x0022 cannot" in line)
    drop = {"stage": "ffa", "line": index, "offset": 0, "size": len(lines[index]) + len(EOL)}
    out = run(tmp_path, {"drop": drop}, xen="xen-4.21", expect="xen-4.21", boot_attempts=2)
    assert (out.exit_code, out.case["verdict"], out.case["attempts"]) == (3, "infra_error", 2)
    assert out.case["message"].endswith(
        "Xen's bit-15 header is not followed by the dropped SP's own line (lost on the way)"
    ), out.case["message"]
    # Once: the retry is judged (PASS).
    drop["boots"] = 1
    again = run(tmp_path / "once", {"drop": drop}, xen="xen-4.21", expect="xen-4.21")
    assert (again.exit_code, again.case["attempts"]) == (0, 2), again.case["message"]


def test_a_boot_of_another_xen_than_the_bundles_is_never_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lab built and deployed Xen 4.22.0 (the bundle says so, as hil's Xen builds do), but
    # the deploy left last night's 4.21 on the board: its lines are 4.21's, not this Xen's.
    def with_xen_4_22(*args: Any, **kwargs: Any) -> Any:
        return write_bundle(*args, **kwargs, facts={"xen:version": "4.22.0"})

    monkeypatch.setattr(platform, "write_bundle", with_xen_4_22)
    out = run(tmp_path, {}, xen="xen-4.21", expect="xen-4.22", boot_attempts=1)
    assert (out.exit_code, out.case["verdict"]) == (3, "infra_error"), out.case["message"]
    assert out.case["message"].endswith(
        "not judged: the board did not boot the bundle deployed: "
        "Xen 4.21.0 booted, the bundle deployed carries Xen 4.22.0"
    ), out.case["message"]
    # The same bundle on a board that boots it is judged as ever.
    again = run(tmp_path / "right", {}, xen="xen-4.22", expect="xen-4.22")
    assert (again.exit_code, again.case["verdict"]) == (0, "pass"), again.case["message"]
