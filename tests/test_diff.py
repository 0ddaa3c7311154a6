"""hil diff without booting anything: noise normalisation, what a boot's lines become, patch files
(split, applied, refused with one line), the review's JSON, exit codes and HTML, and recordings.
tests/firmware/test_real_xen_diff.py runs the whole thing on real Xen."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hil.cli import main
from hil.diff.behaviour import Behaviour, xen_lines
from hil.diff.compare import LineDiff, Review, ScenarioDiff, Side, Status
from hil.diff.normalise import normalise
from hil.diff.output import render_html, summary_lines
from hil.diff.patches import PatchError, apply_patches, read_patches
from hil.diff.recording import judge, load_recording, write_recording
from hil.errors import ConfigError, ExitCode
from hil.lab import load_lab
from hil.scenario import load_scenarios
from hil.xen.log import parse_bytes
from tests.labs import BOARDS_DIR, toml_value
from tests.test_xen_build import fake_xen_tree, tar_gz

# -- normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "normalised"),
    [
        # Build date in the banner: replaced, the version and compiler still compared.
        (
            "Xen version 4.22.0 (hil@hil) (gcc 14.2.0) debug=n Tue Dec  1 20:11:05 UTC 2026",
            "Xen version 4.22.0 (hil@hil) (gcc 14.2.0) debug=n <date>",
        ),
        # dom0's RAM bank moves; the bank number and size stay.
        (
            "BANK[0] 0x00000048000000-0x00000050000000 (128MB)",
            "BANK[0] <ram> (128MB)",
        ),
        (
            "Loading d0 kernel from boot module @ 0000000047e00000",
            "Loading d0 kernel from boot module @ <addr>",
        ),
        ("ffa: buffer at 0x000000004f000000 mapped", "ffa: buffer at <addr> mapped"),
        ("[    1.234567] ffa: probing", "ffa: probing"),
        # Values are not addresses: FF-A function ids, SP ids, error codes.
        (
            "ffa: mandatory feature id 0x84000063 missing",
            "ffa: mandatory feature id 0x84000063 missing",
        ),
        (
            "ffa: Secure partition with id 0x0011 cannot be used",
            "ffa: Secure partition with id 0x0011 cannot be used",
        ),
    ],
)
def test_noise_is_replaced_and_the_rest_kept(line: str, normalised: str) -> None:
    assert normalise(line) == normalised


# Two boots (the first retried): only the last counts. Timestamps and prefixes differ per boot.
CONSOLE = b"""\
NOTICE:  Booting Trusted Firmware
(XEN) [    0.100000] ARM FF-A Mediator version 1.1
NOTICE:  Booting Trusted Firmware
(XEN) Xen version 4.22.0 (hil@hil) (gcc) debug=n Tue Dec  1 20:11:05 UTC 2026
(XEN) [    0.200000] ARM FF-A Mediator version 1.2
(XEN) [    0.200100] ffa: Firmware is not using bit 15 convention for IDs !!
(XEN) ffa: Secure partition 0x0042 is not usable at 0x000000004f000000
(XEN) SP 0x0043 dropped
(d0) ffa: a guest saying ffa is not Xen
(XEN) [    0.300000] Using TEE mediator for FF-A
(XEN) SP 0x0044 dropped
(XEN) Freed 340kB init memory.
"""


def test_xen_lines_are_the_last_boots_ffa_lines_without_noise() -> None:
    assert xen_lines(parse_bytes(CONSOLE, "ns")) == (
        "(XEN) ARM FF-A Mediator version 1.2",
        "(XEN) ffa: Firmware is not using bit 15 convention for IDs !!",
        # Not in the catalogue (a reworded printk): kept, normalised.
        "(XEN) ffa: Secure partition 0x0042 is not usable at <addr>",
        # Nothing says FF-A, but it comes during the mediator's init.
        "(XEN) SP 0x0043 dropped",
        "(XEN) Using TEE mediator for FF-A",
    )


# -- patches ---------------------------------------------------------------------------------

PARTINFO = "xen/arch/arm/tee/ffa_partinfo.c"
SOURCE = "".join(f"line {n}\n" for n in range(1, 31))


def xen_tree(root: Path) -> Path:
    fake_xen_tree(root)
    (root / PARTINFO).parent.mkdir(parents=True)
    (root / PARTINFO).write_text(SOURCE)
    return root


def unified(old: str, new: str, at: int) -> str:
    """A -p1 diff of PARTINFO replacing line ``at`` (text ``old``) with ``new``."""
    ctx_before = "".join(f" line {n}\n" for n in range(at - 3, at))
    ctx_after = "".join(f" line {n}\n" for n in range(at + 1, at + 4))
    return (
        f"--- a/{PARTINFO}\n+++ b/{PARTINFO}\n@@ -{at - 3},7 +{at - 3},7 @@\n"
        f"{ctx_before}-{old}\n+{new}\n{ctx_after}"
    )


def format_patch(subject: str, body: str, sha: str = "0" * 40) -> str:
    return (
        f"From {sha} Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\n"
        "Date: Tue, 1 Dec 2026 10:00:00 +0000\n"
        f"Subject: [PATCH] {subject}\n\nWhy.\n---\n{body}--\n2.47.0\n\n"
    )


def test_a_plain_diff_applies(tmp_path: Path) -> None:
    tree = xen_tree(tmp_path / "x")
    (tmp_path / "p.diff").write_text(unified("line 10", "line ten", 10))
    apply_patches(read_patches(tmp_path / "p.diff"), tree)
    assert (tree / PARTINFO).read_text() == SOURCE.replace("line 10\n", "line ten\n")


def test_an_mbox_is_split_and_applied_in_order(tmp_path: Path) -> None:
    tree = xen_tree(tmp_path / "x")
    cover = "From git@z Thu Jan  1 00:00:00 1970\nSubject: [PATCH 0/2] series\n\nCover.\n\n"
    mbox = cover + format_patch("first", unified("line 10", "line ten", 10))
    # The second patch edits what the first made: only applies after it.
    mbox += format_patch("second", unified("line ten", "line TEN", 10))
    (tmp_path / "s.mbox").write_text(mbox)
    patches = read_patches(tmp_path / "s.mbox")
    assert [(p.number, p.of, p.subject) for p in patches] == [
        (1, 2, "[PATCH] first"),
        (2, 2, "[PATCH] second"),
    ]
    apply_patches(patches, tree)
    assert "line TEN\n" in (tree / PARTINFO).read_text()


def test_a_patch_that_does_not_apply_names_the_file_and_hunk(tmp_path: Path) -> None:
    tree = xen_tree(tmp_path / "x")
    series = format_patch("fine", unified("line 5", "line five", 5))
    series += format_patch("stale", unified("line 20 (old text)", "line twenty", 20))
    (tmp_path / "s.mbox").write_text(series)
    with pytest.raises(PatchError) as info:
        apply_patches(read_patches(tmp_path / "s.mbox"), tree)
    assert str(info.value) == (
        f"{tmp_path / 's.mbox'} (patch 2 of 2: [PATCH] stale): does not apply: "
        f"{PARTINFO} hunk #1 (@@ -17,7 +17,7 @@)"
    )
    assert info.value.exit_code == ExitCode.USAGE


def test_a_file_without_a_diff_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("just words\n")
    with pytest.raises(PatchError, match=r"notes\.txt: no diff in it"):
        read_patches(tmp_path / "notes.txt")


def test_git_apply_inside_another_repository_still_patches_the_tree(tmp_path: Path) -> None:
    # git apply run in a subdirectory of a repository applies relative to that repository.
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    tree = xen_tree(tmp_path / "deep" / "x")
    (tmp_path / "p.diff").write_text(unified("line 10", "line ten", 10))
    apply_patches(read_patches(tmp_path / "p.diff"), tree)
    assert "line ten\n" in (tree / PARTINFO).read_text()


def qemu_lab(directory: Path) -> Path:
    lab = directory / "lab.toml"
    lab.write_text(
        f"boards_dir = {toml_value(str(BOARDS_DIR))}\n"
        f"results_dir = {toml_value(str(directory / 'results'))}\n"
        '[[board]]\nname = "q0"\ntype = "qemu-virt"\nxen_profile = "xen-4.22"\n'
        'power = { backend = "qemu" }\ndeploy = { backend = "qemu" }\n'
    )
    return lab


def test_hil_diff_with_a_stale_patch_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tar_gz(xen_tree(tmp_path / "t"), tmp_path / "xen-4.99.0.tar.gz")
    (tmp_path / "stale.patch").write_text(unified("line 12 (old text)", "line twelve", 12))
    argv = ["diff", "--lab", str(qemu_lab(tmp_path)), "--board", "q0", "--base", str(archive)]
    code = main([*argv, "--head-patch", str(tmp_path / "stale.patch")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"hil: error: {tmp_path / 'stale.patch'}: does not apply: "
        f"{PARTINFO} hunk #1 (@@ -9,7 +9,7 @@)\n"
    )


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--base", "nowhere.tar.xz", "--head", "x"], "--base: nowhere.tar.xz: no such archive"),
        (
            ["--base", "missing-dir", "--head", "x"],
            "--base: missing-dir: no such file or directory",
        ),
        (["--base", "recorded:nope", "--head", "x"], "nope/recording.json: no recording here"),
    ],
)
def test_bad_sides_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["diff", "--lab", str(qemu_lab(tmp_path)), "--board", "q0", *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_hil_diff_refuses_a_board_it_cannot_boot_a_xen_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.labs import write_lab

    lab = write_lab(tmp_path, {"virtual0": {}})
    code = main(["diff", "--lab", str(lab), "--board", "virtual0", "--base", ".", "--head", "."])
    assert code == 2
    assert "hil diff boots a given Xen on boards hil launches" in capsys.readouterr().err


# -- comparison, JSON, exit codes, HTML --------------------------------------------------------

SAME = Behaviour(("(XEN) ARM FF-A Mediator version 1.2",), ("HILPROBE begin",))


def side(behaviour: Behaviour | None, verdict: str = "pass") -> Side:
    return Side(verdict, "", behaviour, "xen-4.22")


def test_a_side_that_did_not_boot_is_not_compared_never_same() -> None:
    diff = ScenarioDiff.of("s", side(SAME), side(None, "infra_error"))
    assert diff.status is Status.NOT_COMPARED
    review = Review({"input": "a"}, {"input": "b"}, [diff])
    assert review.exit_code == ExitCode.INFRA
    assert review.to_json()["scenarios"][0]["differs"] is False
    assert review.to_json()["scenarios"][0]["compared"] is False


def test_json_has_the_issue_schema_and_differences_outrank_not_compared() -> None:
    head = Behaviour(("(XEN) ARM FF-A Mediator version 1.3",), SAME.guest)
    scenarios = [
        ScenarioDiff.of("a", side(SAME), side(head)),
        ScenarioDiff.of("b", side(SAME), side(SAME)),
        ScenarioDiff.of("c", side(None, "infra_error"), side(SAME)),
    ]
    review = Review({"input": "base"}, {"input": "head"}, scenarios)
    data = json.loads(json.dumps(review.to_json()))
    assert data["base"] == {"input": "base"} and data["head"] == {"input": "head"}
    first = data["scenarios"][0]
    assert (first["name"], first["differs"]) == ("a", True)
    assert first["xen"] == {
        "removed": ["(XEN) ARM FF-A Mediator version 1.2"],
        "added": ["(XEN) ARM FF-A Mediator version 1.3"],
    }
    assert first["guest"] == {"removed": [], "added": []}
    assert [s["status"] for s in data["scenarios"]] == ["differs", "same", "not compared"]
    assert review.exit_code == ExitCode.CHECK_FAILED
    summary = summary_lines(review)
    assert summary[-1].startswith("3 scenarios: 1 same, 1 differs, 1 not compared -> exit 1")
    assert "    -(XEN) ARM FF-A Mediator version 1.2" in summary


def test_console_text_is_escaped_in_html_and_inert_on_the_terminal() -> None:
    evil = Behaviour(("(XEN) ffa: <script>alert(1)</script>\x1b]0;pwned\x07",), SAME.guest)
    review = Review({"input": "a"}, {"input": "b"}, [ScenarioDiff.of("s", side(SAME), side(evil))])
    page = render_html(review).decode()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in "\n".join(summary_lines(review))


def test_line_diff_aligns_a_reworded_line() -> None:
    diff = LineDiff.of(["a", "old", "c"], ["a", "new", "c"])
    assert (diff.removed, diff.added) == (["old"], ["new"])
    assert list(diff.changes()) == ["-old", "+new"]


# -- recordings --------------------------------------------------------------------------------


def test_a_recording_round_trips_and_judges(tmp_path: Path) -> None:
    (scenario,) = load_scenarios(names=["one-non-secure"])
    write_recording(tmp_path / "rec", [(scenario, SAME)], {"xen:version": "4.22.0"})
    recording = load_recording(tmp_path / "rec")
    assert recording.scenario(scenario).behaviour == SAME
    assert recording.provenance == {"xen:version": "4.22.0"}
    assert judge(SAME, SAME, recording.label) == []
    head = Behaviour(("(XEN) ARM FF-A Mediator version 1.1",), SAME.guest)
    diff = judge(SAME, head, "recorded:rec")
    assert diff[:2] == ["--- expected (recorded:rec)", "+++ observed"]
    assert "-(XEN) ARM FF-A Mediator version 1.2" in diff
    assert "+(XEN) ARM FF-A Mediator version 1.1" in diff


def test_a_recording_says_nothing_about_a_scenario_that_changed(tmp_path: Path) -> None:
    one, several = load_scenarios(names=["one-non-secure", "several-non-secure"])
    write_recording(tmp_path / "rec", [(one, SAME)], {})
    recording = load_recording(tmp_path / "rec")
    with pytest.raises(ConfigError, match="scenario 'several-non-secure' not recorded"):
        recording.scenario(several)
    renamed = type(one)(**{**vars(one), "name": "one-non-secure"})  # same name...
    changed = type(one)(**{**vars(several), "name": "one-non-secure"})  # ...other partitions
    assert recording.scenario(renamed)
    with pytest.raises(
        ConfigError, match=r"changed since it was recorded \(spmc_config, probe_plan differ\)"
    ):
        recording.scenario(changed)


@pytest.mark.parametrize(
    ("expect", "expected"),
    [
        ("golden", "field 'expect': expected 'recorded:DIR', got 'golden'"),
        ("recorded:none", "field 'expect': {d}/none/recording.json: no recording here"),
    ],
)
def test_bad_expect_is_one_line(tmp_path: Path, expect: str, expected: str) -> None:
    lab = qemu_lab(tmp_path)
    lab.write_text(lab.read_text() + f"expect = {toml_value(expect)}\n")
    with pytest.raises(ConfigError) as info:
        load_lab(lab)
    assert expected.format(d=tmp_path) in str(info.value)


def test_a_recorded_board_needs_no_profile(tmp_path: Path) -> None:
    (scenario,) = load_scenarios(names=["one-non-secure"])
    write_recording(tmp_path / "rec", [(scenario, SAME)], {})
    lab = qemu_lab(tmp_path)
    text = lab.read_text().replace('xen_profile = "xen-4.22"\n', "")
    lab.write_text(text + 'expect = "recorded:rec"\n')
    board = load_lab(lab).board("q0")
    assert board.recording == (tmp_path / "rec").resolve()
    assert board.xen_profile.startswith("recorded:")


# -- hil run --record and expect on virtual boards ---------------------------------------------


def test_record_then_judge_on_virtual_boards(tmp_path: Path) -> None:
    from tests.labs import write_lab

    golden = tmp_path / "golden"
    lab = write_lab(tmp_path / "rec", {"v22": {"xen_profile": "xen-4.22"}})
    picked = ["--scenario", "one-non-secure", "--scenario", "all-secure"]
    assert main(["run", "--lab", str(lab), *picked, "--record", str(golden)]) == 0
    recording = load_recording(golden)
    assert sorted(recording.scenarios) == ["all-secure", "one-non-secure"]
    one = recording.scenarios["one-non-secure"].behaviour
    assert "(XEN) ffa: Secure partition with id 0x0042 cannot be used" in one.xen

    pinned = {"expect": f"recorded:{golden}"}
    same = write_lab(tmp_path / "same", {"v22": {"xen_profile": "xen-4.22", **pinned}})
    assert main(["run", "--lab", str(same), *picked]) == 0
    older = write_lab(tmp_path / "older", {"v21": {"xen_profile": "xen-4.21", **pinned}})
    assert main(["run", "--lab", str(older), *picked]) == 1
    summary = json.loads((tmp_path / "older/results/latest/summary.json").read_text())
    case = next(c for c in summary["run"]["cases"] if c["scenario"] == "one-non-secure")
    assert case["expected_profile"] == f"recorded:{golden}"
    assert "-(XEN) ARM FF-A Mediator version 1.2" in case["diff"]
    # Rerunning what failed judges it against the recording again, not some profile.
    first = (tmp_path / "older/results/latest").resolve()
    assert main(["run", "--lab", str(older), "--rerun-failed", str(first)]) == 1
    again = json.loads((tmp_path / "older/results/latest/summary.json").read_text())
    assert {c["expected_profile"] for c in again["run"]["cases"]} == {f"recorded:{golden}"}
    # A scenario the recording lacks is refused before anything boots.
    assert main(["run", "--lab", str(same), "--scenario", "zero-sps"]) == 2


def test_check_on_a_pinned_board_says_and_uses_its_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.labs import write_lab

    golden = tmp_path / "golden"
    recorder = write_lab(tmp_path / "rec", {"v22": {"xen_profile": "xen-4.22"}})
    assert (
        main(
            ["run", "--lab", str(recorder), "--scenario", "one-non-secure", "--record", str(golden)]
        )
        == 0
    )
    # A 4.21 board pinned to a 4.22 recording: bring-up must name (and judge by) the recording,
    # not the profile it also declares.
    pinned = {"xen_profile": "xen-4.21", "expect": f"recorded:{golden}"}
    lab = write_lab(tmp_path / "pinned", {"v21": pinned})
    capsys.readouterr()
    assert main(["check", "v21", "--lab", str(lab), "--scenario", "one-non-secure"]) == 1
    out = capsys.readouterr().out
    assert f"expecting recorded:{golden}" in out
    assert "expecting xen-4.21" not in out
    # A scenario the recording lacks is refused before the board boots, in one line.
    assert main(["check", "v21", "--lab", str(lab), "--scenario", "all-secure"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scenario 'all-secure' not recorded" in err[0]


def test_a_panicked_case_is_read_from_the_normal_console_whatever_the_order(
    tmp_path: Path,
) -> None:
    from datetime import UTC, datetime

    from hil.diff.runs import case_side
    from hil.results import CaseResult, Verdict

    # A panicked case judged no boot of its own (no evidence window): what it showed comes from
    # the board's normal-world console, even when a lab's board type lists the secure one first.
    (scenario,) = load_scenarios(names=["one-non-secure"])
    case_dir = tmp_path / "b0" / "one-non-secure"
    case_dir.mkdir(parents=True)
    (case_dir / "sec.raw").write_bytes(b"HIL test SPMC: 2 partitions\n")
    (case_dir / "uart0.raw").write_bytes(
        b"NOTICE:  Booting Trusted Firmware\n(XEN) Xen version 4.22.0 (ci@lab) (gcc) debug=n\n"
        b"(XEN) ARM FF-A Mediator version 1.2\n(XEN) Panic on CPU 0:\n"
    )
    artifacts = {
        f"console:{name}:raw": f"b0/one-non-secure/{name}.raw" for name in ("sec", "uart0")
    }
    panicked = CaseResult(
        "b0", "one-non-secure", Verdict.FAIL, datetime.now(UTC), 1.0, "panic", artifacts=artifacts
    )
    seen = case_side(tmp_path, panicked, scenario, "uart0").behaviour
    assert seen is not None and "(XEN) ARM FF-A Mediator version 1.2" in seen.xen, seen


def test_a_side_whose_boot_ended_in_a_panic_differs_from_one_that_did_not(tmp_path: Path) -> None:
    import shutil
    from dataclasses import replace

    from hil.diff.runs import case_side
    from hil.report.summary import load_summary
    from hil.results import BootOutcome, BootRecord, Verdict
    from tests.labs import write_lab

    # The head's secure world panicked just after the probe's last line (hil run's late
    # panic: a FAIL, no evidence window), its normal console the same as the base's clean boot.
    # A panic is behaviour: the review must not call the scenario the same and exit 0.
    lab = write_lab(tmp_path, {"base": {}})
    assert main(["run", "--lab", str(lab), "--scenario", "one-non-secure"]) == 0
    run_dir = (tmp_path / "results" / "latest").resolve()
    (passed,) = load_summary(run_dir / "summary.json").cases
    shutil.copytree(run_dir / "base", run_dir / "head")
    (run_dir / "head/one-non-secure/evidence.json").unlink()
    why = "board 'head': console 'secure': panic: 'Panic: unexpected SMC from the normal world'"
    panicked = replace(
        passed,
        board="head",
        verdict=Verdict.FAIL,
        message=why,
        artifacts={k: v.replace("base/", "head/", 1) for k, v in passed.artifacts.items()},
        boots=[BootRecord(1, 0.0, 1.0, BootOutcome.PANIC, None, why)],
    )
    del panicked.artifacts["evidence"]
    (scenario,) = load_scenarios(names=["one-non-secure"])
    base = case_side(run_dir, passed, scenario, "ns")
    head = case_side(run_dir, panicked, scenario, "ns")
    diff = ScenarioDiff.of("one-non-secure", base, head)
    assert diff.status is Status.DIFFERS
    assert Review({"input": "a"}, {"input": "b"}, [diff]).exit_code == ExitCode.CHECK_FAILED
    assert any("Panic: unexpected SMC" in line for line in diff.changes())


def test_recording_a_case_that_was_not_judged_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.labs import write_lab

    stall = {"power": {"faults": {"stall": {"stage": "xen"}}}}
    lab = write_lab(tmp_path, {"v22": stall})
    golden = tmp_path / "golden"
    code = main(["run", "--lab", str(lab), "--scenario", "all-secure", "--record", str(golden)])
    err = capsys.readouterr().err
    assert code == 3 and not golden.exists()
    assert f"--record {golden}: nothing recorded: v22/all-secure was not judged (infra_error" in err


def test_a_recording_that_cannot_be_written_does_not_hide_a_failed_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.labs import write_lab

    # The run fails a check (exit 1, as its last line and summary.json say); the recording then
    # cannot be written (here its index is a directory). A regression outranks a broken lab:
    # hil still exits 1, not 3, and says in one line why nothing was recorded.
    lab = write_lab(tmp_path, {"v22": {}})
    golden = tmp_path / "golden"
    (golden / "recording.json").mkdir(parents=True)
    argv = ["run", "--lab", str(lab), "--scenario", "one-non-secure", "--record", str(golden)]
    code = main([*argv, "--expect-profile", "xen-4.21"])
    out, err = capsys.readouterr()
    assert "-> exit 1: a check failed" in out
    summary = json.loads((tmp_path / "results/latest/summary.json").read_text())
    assert (code, summary["exit_code"]) == (1, 1)
    assert err.count("\n") == 1 and "--record" in err and "Is a directory" in err


def test_record_will_not_scatter_files_into_a_foreign_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.labs import write_lab

    (tmp_path / "notes.txt").write_text("mine")
    lab = write_lab(tmp_path / "lab", {"v22": {}})
    assert main(["run", "--lab", str(lab), "--record", str(tmp_path)]) == 2
    assert "not empty and not a recording" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab", "notes.txt"]


def test_changes_every_scenario_shares_are_listed_once() -> None:
    bump = ("(XEN) ARM FF-A Mediator version 1.1",)
    head = ("(XEN) ARM FF-A Mediator version 1.2",)
    a = ScenarioDiff.of(
        "a", side(Behaviour(bump, ("x",))), side(Behaviour(head, ("y",)), verdict="fail")
    )
    b = ScenarioDiff.of("b", side(Behaviour(bump, ("x",))), side(Behaviour(head, ("x",))))
    lines = summary_lines(Review({"input": "4.21"}, {"input": "4.22"}, [a, b]))
    assert lines[2:5] == [
        "in every scenario that differs (2 lines):",
        "    -(XEN) ARM FF-A Mediator version 1.1",
        "    +(XEN) ARM FF-A Mediator version 1.2",
    ]
    # Each scenario then shows only its own changes, and a side failing its expectation.
    assert lines[5:8] == [
        "a  differs  xen -1 +1, guest -1 +1, head fails xen-4.22",
        "    -x",
        "    +y",
    ]
    assert lines[8] == "b  differs  xen -1 +1"


def test_a_case_that_was_not_judged_has_nothing_to_compare(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from hil.diff.runs import case_side
    from hil.results import CaseResult, Verdict

    (scenario,) = load_scenarios(names=["all-secure"])
    stalled = CaseResult("head", "all-secure", Verdict.INFRA_ERROR, datetime.now(UTC), 1.0, "stall")
    got = case_side(tmp_path, stalled, scenario, "ns")
    assert (got.verdict, got.message, got.behaviour) == ("infra_error", "stall", None)
    assert case_side(tmp_path, None, scenario, "ns").behaviour is None


def test_each_side_boots_on_its_own_back_ends(tmp_path: Path) -> None:
    from hil.diff.inputs import parse_input

    lab = qemu_lab(tmp_path)
    own = 'power = { backend = "qemu", workdir = "qemu-work" }'
    lab.write_text(lab.read_text().replace('power = { backend = "qemu" }', own))
    board = load_lab(lab).board("q0")
    tree = str(xen_tree(tmp_path / "x"))
    base, head = (
        parse_input(o, tree).board(board, n) for o, n in (("--base", "base"), ("--head", "head"))
    )
    assert (base.name, base.power.board, base.deploy.board) == ("base", "base", "base")
    assert base.power.data["workdir"] != head.power.data["workdir"]
    assert base.xen_src == (tmp_path / "x").resolve() and base.xen_image is None


def test_real_git_format_patch_output_applies(tmp_path: Path) -> None:
    repo = xen_tree(tmp_path / "repo")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    for n, text in ((10, "ten"), (20, "twenty")):
        path = repo / PARTINFO
        path.write_text(path.read_text().replace(f"line {n}\n", f"line {text}\n"))
        subprocess.run([*git, "commit", "-qam", f"xen/arm: ffa: say {text}"], check=True)
    out = tmp_path / "series"
    subprocess.run([*git, "format-patch", "-q", "-2", "-o", str(out)], check=True)
    mbox = tmp_path / "series.mbox"
    mbox.write_bytes(b"".join(p.read_bytes() for p in sorted(out.iterdir())))
    patches = read_patches(mbox)
    assert [p.subject for p in patches] == [
        "[PATCH 1/2] xen/arm: ffa: say ten",
        "[PATCH 2/2] xen/arm: ffa: say twenty",
    ]
    tree = xen_tree(tmp_path / "fresh")
    apply_patches(patches, tree)
    assert (tree / PARTINFO).read_text() == (repo / PARTINFO).read_text()


def test_a_linux_guest_board_is_refused_where_the_probes_answers_are_compared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A recording and hil diff hold the probe's answers; the Linux guest gives none.
    (scenario,) = load_scenarios(names=["one-non-secure"])
    write_recording(tmp_path / "rec", [(scenario, SAME)], {})
    lab = qemu_lab(tmp_path)
    linux = lab.read_text() + 'xen_image = "xen"\nguest = "linux"\n'
    lab.write_text(linux + 'expect = "recorded:rec"\n')
    with pytest.raises(ConfigError, match="field 'guest': a board judged by a recording"):
        load_lab(lab)
    lab.write_text(linux)
    code = main(["diff", "--lab", str(lab), "--board", "q0", "--base", "a", "--head", "b"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [
        "hil: error: --board q0: boots the linux guest; hil diff compares the probe's answers "
        "(use a board without guest)"
    ]
    code = main(["run", "--lab", str(lab), "--record", str(tmp_path / "golden")])
    assert code == 2 and "--record: board 'q0' boots the linux guest" in capsys.readouterr().err
