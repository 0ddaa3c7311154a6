"""Console text is the firmware's (or the wire's) to choose: markup, terminal escapes and shell
syntax printed by a board end up escaped in report.html, inert on the terminal, and never run;
config-given commands are argv lists; names from files never escape the results directory."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from hil.backend import BackendSpec
from hil.cli import main
from hil.power import POWER
from hil.scenario import SCENARIO_DIR
from tests.reliability.support import board_table, hil_run, write_lab


def payload(marker: Path) -> str:
    """One line of everything hostile at once; running any of its shell parts makes ``marker``."""
    return (
        '<script>alert(1)</script> "><img src=x onerror=alert(1)> '
        "\x1b]0;pwned\x07 \x1b[2J\x1b[31m red \x1bP+q544e\x1b\\ \x9b31m "
        f"$(touch {marker}) `touch {marker}` ; touch {marker} | touch {marker}"
    )


# The stall makes the payload the last line before the failure: it lands in the message and in
# the console tail of the report, the most exposed places.
def hostile_faults(marker: Path) -> dict[str, object]:
    return {
        "text": {"stage": "xen", "text": payload(marker) + "\r\n"},
        "stall": {"stage": "xen"},
    }


def assert_inert(text: str) -> None:
    for bad in ("\x1b", "\x07", "\x9b", "\x90"):
        assert bad not in text, f"{bad!r} reached the terminal"


def test_hostile_console_text_is_escaped_and_never_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    lab = write_lab(tmp_path / "lab", hostile_faults(marker), boot_attempts=1)
    out = hil_run(lab, tmp_path / "results")
    assert out.case["verdict"] == "infra_error"
    run_output = capsys.readouterr()
    assert_inert(run_output.out + run_output.err)

    html = (out.run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_inert(html)

    capture = out.run_dir / "v0" / "all-secure"
    for log in ("ns.log", "ns.raw"):
        assert main(["triage", str(capture / log)]) in (0, 1, 3)
        triaged = capsys.readouterr()
        assert_inert(triaged.out + triaged.err)

    code = main(["check", "v0", "--lab", str(lab), "--results", str(tmp_path / "check")])
    assert code == 3
    checked = capsys.readouterr()
    assert "pwned" in checked.out
    assert_inert(checked.out + checked.err)
    assert not marker.exists()


def test_power_command_arguments_reach_the_command_verbatim(tmp_path: Path) -> None:
    marker, record = tmp_path / "pwned", tmp_path / "argv.json"
    hostile = [f"$(touch {marker})", f"`touch {marker}`", f"; touch {marker}", "a b", "*", "~"]
    script = f"import json, sys; open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))"
    argv = [sys.executable, "-c", script, *hostile]
    spec = BackendSpec(
        tmp_path / "lab.toml",
        "board 'p0'",
        "power.",
        {"on": argv, "off": argv},
        "p0",
        "pdu-command",
    )
    POWER.create(spec).power_on()
    assert json.loads(record.read_text()) == hostile
    assert not marker.exists()


def test_a_scenario_file_named_dotdot_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    shutil.copy(SCENARIO_DIR / "all-secure.toml", scenarios / "..evil.toml")
    results = tmp_path / "out" / "results"
    lab = write_lab(tmp_path / "lab")
    before = set(tmp_path.rglob("*"))
    argv = ["run", "--lab", str(lab), "--results", str(results), "--scenarios-dir", str(scenarios)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "..evil" in err
    assert_written_only_under(results, set(tmp_path.rglob("*")) - before)


def assert_written_only_under(results: Path, written: set[Path]) -> None:
    assert all(p == results or results in p.parents for p in written), written
    assert not any(p.name == "summary.json" for p in written)


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "x" * 65])
def test_a_board_name_that_is_not_a_file_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    lab = write_lab(tmp_path / "lab", boards=(), tables=[board_table(name)])
    results = tmp_path / "deep" / "er" / "results"
    before = set(tmp_path.rglob("*"))
    assert main(["run", "--lab", str(lab), "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lab.toml" in err and "field 'name'" in err
    assert_written_only_under(results, set(tmp_path.rglob("*")) - before)
    assert main(["boards", "--lab", str(lab)]) == 2
