"""`hil run` end to end on virtual boards: verdicts, exit codes, and what lands on disk."""

import itertools
import json
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hil.cli import main
from hil.lock import BoardLock
from tests.labs import write_lab


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def only_run_dir(results: Path) -> Path:
    (run_dir,) = [p for p in results.iterdir() if p.is_dir() and not p.is_symlink()]
    return run_dir


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def cases(run_dir: Path) -> dict[tuple[str, str], dict]:
    data = summary(run_dir)
    return {(c["board"], c["scenario"]): c for c in data["run"]["cases"]}


def test_passing_run_writes_every_artifact(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}})
    code, out, _ = run(capsys, "--lab", str(lab), "--scenario", "one-non-secure")
    assert code == 0
    assert "vb0" in out and "PASS" in out
    run_dir = only_run_dir(tmp_path / "results")
    case = cases(run_dir)[("vb0", "one-non-secure")]
    assert case["verdict"] == "pass"
    for role in ("console:ns:raw", "console:ns:log", "console:secure:raw", "events", "process-log"):
        assert (run_dir / case["artifacts"][role]).is_file(), role
    raw = (run_dir / case["artifacts"]["console:ns:raw"]).read_bytes()
    assert b"ffa: Secure partition with id 0x0042 cannot be used" in raw
    events = json.loads((run_dir / case["artifacts"]["events"]).read_text())
    assert any(e.get("key") == "sp_unusable" and e["fields"] == {"id": 0x42} for e in events)
    assert {s["name"] for s in case["stages"]} >= {"bl1", "xen", "ffa", "probe"}
    assert any(key.startswith("spmc_config:") for key in case["provenance"])
    suite = ET.parse(run_dir / "junit.xml").getroot()
    assert len(suite.findall(".//testcase")) == 1
    assert "vb0" in (run_dir / "report.html").read_text()


def test_profile_mismatch_fails_with_a_readable_diff(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}})
    code, _, _ = run(
        capsys, "--lab", str(lab), "--scenario", "one-non-secure", "--expect-profile", "xen-4.21"
    )
    assert code == 1
    run_dir = only_run_dir(tmp_path / "results")
    case = cases(run_dir)[("vb0", "one-non-secure")]
    assert case["verdict"] == "fail"
    assert "-(XEN) ARM FF-A Mediator version 1.1" in case["diff"]
    assert "+(XEN) ARM FF-A Mediator version 1.2" in case["diff"]
    failure = ET.parse(run_dir / "junit.xml").getroot().find(".//failure")
    assert failure is not None and "Mediator version 1.2" in failure.text


def test_a_board_running_another_xen_fails_against_its_declared_profile(tmp_path, capsys):
    # The lab declares 4.22, the board runs 4.21 (upgraded lab.toml, old Xen): the run goes red.
    lab = write_lab(tmp_path, {"vb0": {"power": {"xen": "xen-4.21"}}})
    code, _, _ = run(capsys, "--lab", str(lab), "--scenario", "several-non-secure")
    assert code == 1
    case = cases(only_run_dir(tmp_path / "results"))[("vb0", "several-non-secure")]
    header = "+(XEN) ffa: Firmware is not using bit 15 convention for IDs !!"
    assert case["diff"].count(header) == 2  # 4.21 repeats it per SP: three times instead of once


def test_a_stall_is_an_infra_error_after_bounded_retries(tmp_path, capsys):
    stall = {"power": {"faults": {"stall": {"stage": "xen"}}}, "timeouts": {"xen": 0.5}}
    # Stages 50 ms apart: lines two UARTs print microseconds apart reach the host in either
    # order, so which came last is only known when the board leaves time between them.
    lab = write_lab(tmp_path, {"vb0": stall}, boot_attempts=2, stage_delay=0.05)
    code, _, _ = run(capsys, "--lab", str(lab), "--scenario", "all-secure")
    assert code == 3
    case = cases(only_run_dir(tmp_path / "results"))[("vb0", "all-secure")]
    assert case["verdict"] == "infra_error"
    assert case["attempts"] == 2
    assert case["message"] == (
        "board 'vb0': stage 'xen': no Xen's 'Xen version ...' line on console 'ns' within 0.5 s; "
        "last line on secure: 'HIL test SPMC v1 core=0 manifest=0x0e002000 version=0x00010001 "
        "count=3 fpi_size=24 data_len=72 supported=9'"
    )  # in words, not the regex hil matches with; naming the console the quoted line is from
    first, second = case["boots"]
    assert [b["outcome"] for b in case["boots"]] == ["infra_error", "infra_error"]
    assert first["stopped_at"] == second["stopped_at"] == "xen"
    # Each waited out its 0.5 s xen timeout; the second came after the first and its backoff.
    assert first["end_s"] - first["start_s"] >= 0.5
    assert second["start_s"] >= first["end_s"] and case["duration_s"] >= second["end_s"]


def test_a_dom0_kernel_that_cannot_start_the_guest_is_the_labs_fault_not_a_fail(tmp_path, capsys):
    # dom0's kernel panics before the guest runs because it has no init to run (a lab's own
    # kernel without initramfs support, say): nothing about FF-A was seen. A FAIL (exit 1) would
    # blame the firmware or Xen for the lab's kernel; it is not judged (exit 3).
    panic = "[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block"
    faults = {"text": {"stage": "probe", "text": panic + "\r\n"}}
    lab = write_lab(tmp_path, {"vb0": {"power": {"faults": faults}}}, boot_attempts=1)
    code, _, _ = run(capsys, "--lab", str(lab), "--scenario", "all-secure")
    assert code == 3
    case = cases(only_run_dir(tmp_path / "results"))[("vb0", "all-secure")]
    assert case["verdict"] == "infra_error"
    assert "not judged" in case["message"] and "Unable to mount root fs" in case["message"]


def test_a_bug_in_hil_exits_3_never_1_which_says_the_firmware_failed(tmp_path, capsys, monkeypatch):
    # An exception hil does not expect (a bug of its own) would end Python with status 1: for
    # a nightly, "a check failed" (hil run) or "a violation" (hil triage). Nothing was judged.
    def bug(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr("hil.case.compare", bug)
    lab = write_lab(tmp_path, {"vb0": {}})
    assert main(["run", "--lab", str(lab), "--scenario", "all-secure"]) == 3
    # Its heartbeats end with it (they went on writing to whatever stdout had become).
    assert not [t for t in threading.enumerate() if t.name == "progress"]
    monkeypatch.setattr("hil.commands.triage.triage_file", bug)
    log = tmp_path / "xen.log"
    log.write_bytes(b"(XEN) ARM FF-A Mediator version 1.2\n")
    assert main(["triage", str(log)]) == 3
    assert "internal error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("stamps", "offset"),
    [(True, 12), (True, 5), (False, 5)],
    ids=["stamp", "prefix-space", "prefix-space-no-stamp"],
)
def test_a_xen_line_whose_stamp_or_prefix_was_damaged_is_not_judged(
    tmp_path, capsys, stamps, offset
):
    # On the first boot one byte of "(XEN) [    0.000850] Using TEE mediator for FF-A" (with or
    # without Xen's console stamp) is replaced on the UART by a printable one ('"'): in the
    # stamp ('[    0"000850]') or the space after "(XEN)". No Xen prints such a line: it is
    # damaged, and the boot is not judged (booted again: PASS), never a FAIL saying Xen did
    # not print the line.
    corrupt = {"stage": "ffa", "line": 14, "offset": offset, "pattern": "random", "seed": 1}
    power = {"console_timestamps": stamps, "faults": {"corrupt": {**corrupt, "boots": 1}}}
    lab = write_lab(tmp_path, {"vb0": {"power": power}}, boot_attempts=2)
    code, out, _ = run(capsys, "--lab", str(lab), "--scenario", "one-non-secure")
    assert "damaged Xen line" in out
    assert code == 0
    case = cases(only_run_dir(tmp_path / "results"))[("vb0", "one-non-secure")]
    assert (case["verdict"], case["attempts"]) == ("pass", 2)


def test_a_stall_inside_a_stage_names_the_end_it_never_reached(tmp_path, capsys):
    # The probe began and stopped after its fifth line: its begin line is there, its end is not.
    stall = {
        "power": {"faults": {"stall": {"stage": "probe", "line": 5}}},
        "timeouts": {"probe": 0.3},
    }
    lab = write_lab(tmp_path, {"vb0": stall}, boot_attempts=1)
    code, _, _ = run(capsys, "--lab", str(lab), "--scenario", "zero-sps")
    assert code == 3
    message = cases(only_run_dir(tmp_path / "results"))[("vb0", "zero-sps")]["message"]
    # (Which console's line came last is a race between two UARTs: not asserted here.)
    assert message.startswith(
        "board 'vb0': stage 'probe': no 'HILPROBE end' (after its 'HILPROBE begin') on console "
        "'ns' within 0.3 s; last line on "
    ), message


def test_no_time_in_a_case_lies_beyond_its_duration_when_host_clocks_drift(
    tmp_path, capsys, monkeypatch
):
    # The monotonic clock runs 10 % slower than the wall clock (NTP slewing one of them): the
    # case's duration, its boots and its stages must still come from one clock.
    real, origin = time.monotonic, time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: origin + (real() - origin) * 0.9)
    stall = {"power": {"faults": {"stall": {"stage": "xen", "boots": 1}}}, "timeouts": {"xen": 1}}
    lab = write_lab(tmp_path, {"vb0": stall}, boot_attempts=2)
    code, _, _ = run(capsys, "--lab", str(lab), "--scenario", "all-secure")
    assert code == 0
    case = cases(only_run_dir(tmp_path / "results"))[("vb0", "all-secure")]
    assert case["attempts"] == 2
    ends = [b["end_s"] for b in case["boots"]] + [s["end_s"] for s in case["stages"]]
    assert case["duration_s"] >= max(ends)


def test_a_stall_on_the_first_boot_only_passes_on_the_retry(tmp_path, capsys):
    stall = {"power": {"faults": {"stall": {"stage": "ffa", "boots": 1}}}, "timeouts": {"ffa": 0.5}}
    lab = write_lab(tmp_path, {"vb0": stall}, boot_attempts=3)
    code, _, _ = run(capsys, "--lab", str(lab), "--scenario", "all-secure")
    assert code == 0
    case = cases(only_run_dir(tmp_path / "results"))[("vb0", "all-secure")]
    assert (case["verdict"], case["attempts"]) == ("pass", 2)


def test_boards_run_in_parallel_and_reports_merge(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}, "vb1": {}})
    code, _, _ = run(
        capsys,
        "--lab",
        str(lab),
        "-j",
        "2",
        "--board",
        "vb0",
        "--board",
        "vb1",
        "--scenario",
        "all-secure",
        "--scenario",
        "zero-sps",
    )
    assert code == 0
    got = cases(only_run_dir(tmp_path / "results"))
    assert set(got) == {(b, s) for b in ("vb0", "vb1") for s in ("all-secure", "zero-sps")}


def test_a_board_held_by_another_process_is_not_run(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}})
    with BoardLock("vb0"):
        code, _, _ = run(capsys, "--lab", str(lab), "--scenario", "all-secure")
    assert code == 3
    run_dir = only_run_dir(tmp_path / "results")
    case = cases(run_dir)[("vb0", "all-secure")]
    assert case["verdict"] == "not_run"
    assert "board vb0 is in use by pid" in case["message"]
    # junit.xml says so as the exit code does: an error, never a skip a CI server shows green.
    root = ET.parse(run_dir / "junit.xml").getroot()
    assert (root.get("errors"), root.get("skipped")) == ("1", "0")
    error = root.find(".//testcase/error")
    assert error is not None and error.get("type") == "not_run"
    assert "board vb0 is in use by pid" in error.get("message")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--board", "nope"], "no board 'nope'"),
        (["--scenario", "nope"], "unknown scenario 'nope'"),
        (["--expect-profile", "xen-9.9"], "unknown profile 'xen-9.9'"),
        (["-j", "0"], "--jobs must be at least 1"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, argv, message):
    lab = write_lab(tmp_path, {"vb0": {}})
    code, _, err = run(capsys, "--lab", str(lab), *argv)
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "results").exists()


def test_check_reports_each_stage_and_the_last_lines_on_a_stall(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {"power": {"faults": {"stall": {"stage": "ffa"}}}}})
    code = main(["check", "vb0", "--lab", str(lab)])
    out = capsys.readouterr().out
    assert code == 3
    assert "bl31" in out and "timeout" in out and "not_reached" in out
    assert "last lines on ns:" in out
    assert "ARM FF-A Mediator version 1.2" not in out.split("last lines on ns:")[0]


def test_boards_lists_the_lab_and_who_holds_a_board(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}, "vb1": {}})
    with BoardLock("vb1"):
        assert main(["boards", "--lab", str(lab)]) == 0
    out = capsys.readouterr().out
    assert "vb0" in out and "free" in out
    assert "in use by pid" in out


def test_stage_timings_span_from_the_previous_stage_to_their_own_end(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}}, stage_delay=0.1)
    code, _, _ = run(capsys, "--lab", str(lab), "--scenario", "all-secure")
    assert code == 0
    stages = cases(only_run_dir(tmp_path / "results"))[("vb0", "all-secure")]["stages"]
    assert stages[0]["start_s"] == 0.0
    for before, after in itertools.pairwise(stages):
        assert after["start_s"] <= before["end_s"] + 1e-6
    bl2 = next(s for s in stages if s["name"] == "bl2")
    assert 0.05 < bl2["end_s"] - bl2["start_s"] < 0.4  # the board's 0.1 s stage delay
