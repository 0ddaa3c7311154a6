"""Choosing what a run checks (scenario globs, tags, rerunning failures), and what the operator
reads about it: `hil scenarios`, `hil boards`, help, the last line, results/latest, dead boards."""

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from hil.cli import COMMANDS, main
from hil.scenario import load_scenarios
from tests.labs import write_lab

ALWAYS_STALLS = {"faults": {"stall": {"stage": "xen"}}}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def latest(lab: Path) -> Path:
    return (lab.parent / "results" / "latest").resolve()


def cases(run_dir: Path) -> dict[tuple[str, str], dict]:
    data = json.loads((run_dir / "summary.json").read_text())
    return {(c["board"], c["scenario"]): c for c in data["run"]["cases"]}


def write_scenario(directory: Path, name: str, extra: str = "") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.toml").write_text(
        f'description = "{name}"\n{extra}\n[[partition]]\nid = 0x8001\n'
    )


# -- scenarios: listing, globs, tags ---------------------------------------------------------------


def test_hil_scenarios_lists_name_layout_count_tags_and_description(capsys):
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "LAYOUT", "SPS", "TAGS", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {s.name for s in load_scenarios()}
    assert re.match(r"count-63 +v1\.1 +63 +count +63 SPs, the most", rows["count-63"])
    assert re.match(r"v1-3-layout +v1\.3 +2 +layout ", rows["v1-3-layout"])
    assert re.match(r"fpi-size-4096 +v1\.1 as 4096 B +1 +layout ", rows["fpi-size-4096"])


def test_hil_scenarios_takes_globs_and_tags_and_speaks_json(capsys):
    assert main(["scenarios", "--json", "count-*", "zero-sps"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed] == ["count-63", "count-64", "zero-sps"]
    assert listed[0] == {
        "name": "count-63",
        "description": listed[0]["description"],
        "layout": "v1.1",
        "partitions": 63,
        "tags": ["count"],
    }
    assert main(["scenarios", "--json", "--tag", "smoke"]) == 0
    smoke = {s["name"] for s in json.loads(capsys.readouterr().out)}
    assert smoke == {"all-secure", "one-non-secure", "zero-sps"}


def test_a_scenario_glob_runs_every_match_once_in_name_order(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}})
    code, _, _ = run(capsys, "--lab", str(lab), "--scenario", "count-6?", "--scenario", "count-63")
    assert code == 0
    assert list(cases(latest(lab))) == [("vb0", "count-63"), ("vb0", "count-64")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenario", "nothing-*"], "no scenario matches 'nothing-*' in "),
        (["--tag", "nope"], "--tag 'nope': no board or scenario has it (board tags: ci"),
        (["--tag", "ci", "--board", "vb1"], "--tag ci: no selected board has it"),
        (["--tag", "layout", "--scenario", "zero-sps"], "--tag layout: no selected scenario"),
    ],
)
def test_selections_of_nothing_are_one_line_usage_errors(tmp_path, capsys, argv, message):
    lab = write_lab(tmp_path, {"vb0": {"tags": ["ci"]}, "vb1": {}})
    code, _, err = run(capsys, "--lab", str(lab), *argv)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "results").exists()


def test_scenario_tags_are_validated_with_the_file_and_field(tmp_path, capsys):
    scenarios = tmp_path / "scenarios"
    write_scenario(scenarios, "bad", 'tags = ["ok", 7]')
    assert main(["scenarios", "--scenarios-dir", str(scenarios)]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"hil: error: {scenarios / 'bad.toml'}: field 'tags': 7 is not a tag (a "
        "non-empty word, no comma)\n"
    )


def test_tag_selects_scenarios_by_their_tags_and_boards_by_theirs(tmp_path, capsys):
    scenarios = tmp_path / "scenarios"
    write_scenario(scenarios, "a", 'tags = ["nightly"]')
    write_scenario(scenarios, "b", 'tags = ["nightly", "quick"]')
    write_scenario(scenarios, "c")
    # vb2 is not a default board, yet its tag selects it.
    lab = write_lab(
        tmp_path,
        {"vb0": {"default": True}, "vb1": {"tags": ["rack2"]}, "vb2": {"tags": ["rack2"]}},
    )
    common = ("--lab", str(lab), "--scenarios-dir", str(scenarios))
    assert run(capsys, *common, "--tag", "quick")[0] == 0
    assert set(cases(latest(lab))) == {("vb0", "b")}
    assert run(capsys, *common, "--tag", "rack2", "--tag", "nightly", "-j", "2")[0] == 0
    assert set(cases(latest(lab))) == {(b, s) for b in ("vb1", "vb2") for s in ("a", "b")}
    assert run(capsys, *common, "--tag", "rack2", "--board", "vb1", "--scenario", "c")[0] == 0
    assert set(cases(latest(lab))) == {("vb1", "c")}


# -- rerunning what failed ------------------------------------------------------------------------


def test_rerun_failed_runs_exactly_the_failed_and_errored_cases(tmp_path, capsys):
    lab = write_lab(
        tmp_path,
        {
            "good": {},
            "stalls": {"power": ALWAYS_STALLS, "timeouts": {"xen": 0.3}, "offline_after": 5},
            "old-xen": {"power": {"xen": "xen-4.21"}},
        },
        boot_attempts=1,
    )
    boards = ("--board", "good", "--board", "stalls", "--board", "old-xen")
    scenarios = ("--scenario", "all-secure", "--scenario", "zero-sps")
    code, _, _ = run(capsys, "--lab", str(lab), *boards, *scenarios, "-j", "3")
    assert code == 1
    first = latest(lab)
    verdicts = {k: c["verdict"] for k, c in cases(first).items()}
    assert sorted(verdicts.values()) == ["fail"] * 2 + ["infra_error"] * 2 + ["pass"] * 2

    code, out, _ = run(capsys, "--lab", str(lab), "--rerun-failed", str(first), "-j", "3")
    assert code == 1
    again = cases(latest(lab))
    assert latest(lab) != first
    assert set(again) == {k for k, v in verdicts.items() if v != "pass"}
    assert "[good]" not in out
    # Narrowed further by the usual options.
    code, _, _ = run(capsys, "--lab", str(lab), "--rerun-failed", str(first), "--board", "old-xen")
    assert (code, set(cases(latest(lab)))) == (
        1,
        {("old-xen", "all-secure"), ("old-xen", "zero-sps")},
    )


def test_rerun_failed_also_runs_what_was_never_run(tmp_path, capsys):
    # The board stalls and is taken offline: one infra error, two cases not run (exit 3).
    stalls = {"power": ALWAYS_STALLS, "timeouts": {"xen": 0.3}, "offline_after": 1}
    lab = write_lab(tmp_path, {"vb0": stalls}, boot_attempts=1)
    scenarios = ("--scenario", "all-secure", "--scenario", "zero-sps", "--scenario", "guest-v1-2")
    assert run(capsys, "--lab", str(lab), *scenarios)[0] == 3
    first = latest(lab)
    assert sorted(c["verdict"] for c in cases(first).values()) == ["infra_error"] + ["not_run"] * 2
    # Mended, the board passes what it is given: a rerun of only the errored case would exit 0,
    # green for two cases nobody checked.
    write_lab(tmp_path, {"vb0": {}}, boot_attempts=1)
    assert run(capsys, "--lab", str(lab), "--rerun-failed", str(first))[0] == 0
    assert set(cases(latest(lab))) == set(cases(first))


def test_rerun_failed_checks_against_the_profile_the_failed_run_expected(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}})
    argv = ("--lab", str(lab), "--scenario", "zero-sps")
    assert run(capsys, *argv, "--expect-profile", "xen-4.21")[0] == 1
    code, out, _ = run(capsys, "--lab", str(lab), "--rerun-failed", str(latest(lab)))
    assert code == 1
    assert "lines differ from xen-4.21" in out


def test_rerun_failed_keeps_the_expected_profile_when_a_case_of_it_was_not_run(tmp_path, capsys):
    # Judged against xen-4.21, vb0 fails; vb1 stalls and goes offline, so one case is not run
    # (a case never run records no profile). The rerun must judge against xen-4.21 again, not
    # against the boards' own xen-4.22, where everything passes and the rerun exits 0.
    stalls = {"power": ALWAYS_STALLS, "timeouts": {"xen": 0.3}, "offline_after": 1}
    lab = write_lab(tmp_path, {"vb0": {}, "vb1": stalls}, boot_attempts=1)
    argv = ("--lab", str(lab), "--board", "vb0", "--board", "vb1", "-j", "2")
    scenarios = ("--scenario", "zero-sps", "--scenario", "all-secure")
    assert run(capsys, *argv, *scenarios, "--expect-profile", "xen-4.21")[0] == 1
    first = latest(lab)
    assert "not_run" in {c["verdict"] for c in cases(first).values()}
    write_lab(tmp_path, {"vb0": {}, "vb1": {}}, boot_attempts=1)  # vb1 mended
    code, out, _ = run(capsys, "--lab", str(lab), "--rerun-failed", str(first))
    assert code == 1
    assert {c["expected_profile"] for c in cases(latest(lab)).values()} == {"xen-4.21"}
    assert "behaves as xen-4.22" not in out


def test_rerun_failed_of_a_run_that_ran_nothing_keeps_its_expected_profile(tmp_path, capsys):
    # Judged against xen-4.21, but the board was busy: nothing ran, no case was judged. The
    # rerun must still judge against xen-4.21 (where zero-sps fails), not the board's xen-4.22.
    from hil.lock import BoardLock

    lab = write_lab(tmp_path, {"vb0": {}})
    with BoardLock("vb0"):
        code = run(
            capsys, "--lab", str(lab), "--scenario", "zero-sps", "--expect-profile", "xen-4.21"
        )
    assert code[0] == 3
    code, out, _ = run(capsys, "--lab", str(lab), "--rerun-failed", str(latest(lab)))
    assert code == 1
    assert "lines differ from xen-4.21" in out


def test_rerun_failed_of_a_clean_run_or_a_missing_one_is_a_usage_error(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}})
    assert run(capsys, "--lab", str(lab), "--scenario", "zero-sps")[0] == 0
    clean = latest(lab)
    code, _, err = run(capsys, "--lab", str(lab), "--rerun-failed", str(clean))
    assert code == 2 and "every case passed: nothing to rerun" in err
    code, _, err = run(capsys, "--lab", str(lab), "--rerun-failed", str(tmp_path / "nope"))
    assert code == 2 and err.count("\n") == 1 and "summary.json: cannot read" in err


# -- dead boards, mixed outcomes, results/latest ---------------------------------------------


def test_a_board_that_keeps_failing_to_boot_goes_offline_for_the_rest_of_the_run(tmp_path, capsys):
    lab = write_lab(
        tmp_path,
        {"dead": {"power": ALWAYS_STALLS, "timeouts": {"xen": 0.3}}, "fine": {}},
        boot_attempts=2,
    )
    four = [
        a for s in ("all-secure", "zero-sps", "count-63", "count-64") for a in ("--scenario", s)
    ]
    t0 = time.monotonic()
    code, out, _ = run(capsys, "--lab", str(lab), "--board", "dead", "--board", "fine", *four)
    elapsed = time.monotonic() - t0
    assert code == 3
    got = cases(latest(lab))
    dead = [got[("dead", s)] for s in ("all-secure", "zero-sps", "count-63", "count-64")]
    assert [c["verdict"] for c in dead] == ["infra_error", "infra_error", "not_run", "not_run"]
    assert [c["attempts"] for c in dead] == [2, 2, 0, 0]
    reason = dead[1]["message"]
    assert "stage 'xen'" in reason
    assert all(c["message"] == f"board offline: {reason}" for c in dead[2:])
    assert all(got[("fine", s)]["verdict"] == "pass" for s in ("all-secure", "count-64"))
    assert elapsed < 2 * 2 * (0.3 + 1.5) + 10  # two cases of two boots each, not four
    assert "NOT_RUN (0.0 s) - board offline: board 'dead': stage 'xen'" in out


def test_offline_after_is_set_per_board_over_the_lab_default(tmp_path, capsys):
    lab = write_lab(
        tmp_path,
        {"dead": {"power": ALWAYS_STALLS, "timeouts": {"xen": 0.3}, "offline_after": 1}},
        boot_attempts=1,
    )
    code, _, _ = run(
        capsys, "--lab", str(lab), "--scenario", "all-secure", "--scenario", "zero-sps"
    )
    assert code == 3
    got = cases(latest(lab))
    assert got[("dead", "all-secure")]["verdict"] == "infra_error"
    assert got[("dead", "zero-sps")]["message"].startswith("board offline: board 'dead'")


def test_failures_and_infra_errors_together_exit_1_and_the_last_line_counts_both(tmp_path, capsys):
    lab = write_lab(
        tmp_path,
        {"old-xen": {"power": {"xen": "xen-4.21"}}, "dead": {"power": ALWAYS_STALLS}},
        boot_attempts=1,
    )
    code, out, _ = run(
        capsys, "--lab", str(lab), "--board", "old-xen", "--board", "dead", "--scenario", "zero-sps"
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[-2] == f"report: {latest(lab) / 'report.html'}"
    assert re.fullmatch(
        r"run \S+: 0 pass, 1 fail, 1 infra error, 0 not run -> exit 1: a check failed; "
        r"1 not judged \(infra error or not run\)",
        lines[-1],
    )


def test_results_latest_points_at_the_last_finished_run(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {}})
    assert run(capsys, "--lab", str(lab), "--scenario", "zero-sps")[0] == 0
    link = tmp_path / "results" / "latest"
    first = link.resolve()
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()  # the tree can move
    assert run(capsys, "--lab", str(lab), "--scenario", "zero-sps")[0] == 0
    assert link.resolve() != first and (link / "summary.json").is_file()
    assert sorted(p.name for p in link.parent.iterdir() if not p.is_symlink()) == sorted(
        [first.name, link.resolve().name]
    )


def test_results_latest_points_at_a_failed_run_too(tmp_path, capsys):
    lab = write_lab(tmp_path, {"old-xen": {"power": {"xen": "xen-4.21"}}})
    assert run(capsys, "--lab", str(lab), "--scenario", "one-non-secure")[0] == 1
    summary = json.loads((latest(lab) / "summary.json").read_text())
    assert summary["exit_code"] == 1 and summary["counts"]["fail"] == 1


def test_results_latest_points_at_an_interrupted_run_too(tmp_path, capsys):
    lab = write_lab(
        tmp_path,
        {"stuck": {"power": ALWAYS_STALLS, "timeouts": {"xen": 20}}},
        boot_attempts=1,
    )
    stalled = threading.Event()

    def ctrl_c_once_it_stalls() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(b"BL31" in p.read_bytes() for p in tmp_path.glob("results/*/stuck/*/ns.raw")):
                stalled.set()
                time.sleep(0.2)
                # Ctrl-C, to the process as a terminal sends it (raise_signal would signal this
                # thread, and hil's main thread would only see it once the 20 s wait was over).
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    threading.Thread(target=ctrl_c_once_it_stalls, daemon=True).start()
    code, out, _ = run(capsys, "--lab", str(lab), "--scenario", "zero-sps")
    assert stalled.is_set() and code == 3
    summary = json.loads((latest(lab) / "summary.json").read_text())
    assert summary["run"]["interrupted"] is True
    # The stage's wait ended with the Ctrl-C, not at its 20 s timeout: the case was not run.
    (case,) = summary["run"]["cases"]
    assert case["verdict"] == "not_run" and case["duration_s"] < 10, case
    assert out.splitlines()[-2] == f"report: {latest(lab) / 'report.html'}"


# -- help and listings ----------------------------------------------------------------------------


def test_hil_help_describes_the_tool_and_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "Hardware-in-the-loop checks that the firmware a lab ships" in out
    assert "hil.commands" not in out  # no developer notes
    for name in COMMANDS:
        assert re.search(rf"^    {name} +\S", out, re.M), name


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_help_names_its_exit_codes(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    codes = out.split("exit codes:\n", 1)[1]
    assert re.search(r"^  0  ", codes, re.M) and re.search(r"^  2  ", codes, re.M)
    table = codes.split("\n\n", 1)[0].splitlines()
    # Each meaning reads as a block: continuation lines under its first word, none overlong.
    assert all(re.match(r"  \d  \S|     \S", line) for line in table), table
    assert max(map(len, table)) <= 92


def test_run_help_documents_the_exit_code_precedence(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "both failed checks and infrastructure errors exits 1" in out


def test_boards_says_which_boards_hil_launches(tmp_path, capsys):
    lab = write_lab(tmp_path, {"vb0": {"tags": ["ci", "rack1"]}})
    with lab.open("a") as f:
        f.write('[[board]]\nname = "q0"\ntype = "qemu-virt"\nxen_profile = "none"\n')
        f.write('power = { backend = "qemu" }\ndeploy = { backend = "qemu" }\n')
        f.write('[[board]]\nname = "f0"\ntype = "fvp-base-revc"\nxen_profile = "none"\n')
        f.write('power = { backend = "fvp", model = "/opt/fvp/FVP_Base_RevC-2xAEMvA" }\n')
    assert main(["boards", "--lab", str(lab)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "BOARD",
        "TYPE",
        "PROFILE",
        "DEFAULT",
        "TAGS",
        "STATE",
        "REACHED",
        "THROUGH",
    ]
    assert re.fullmatch(
        r"vb0 +virtual +xen-4\.22 +ci,rack1 +free +launched by hil \(virtual board\)", lines[1]
    )
    assert re.fullmatch(r"q0 +qemu-virt +none +free +launched by hil \(QEMU\)", lines[2])
    assert "socket://" not in lines[2]
    assert re.fullmatch(r"f0 +fvp-base-revc +none +free +launched by hil \(FVP\)", lines[3])
