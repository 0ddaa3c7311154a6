import json
import os
import xml.etree.ElementTree as ET
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.report import html, junit, write_reports
from hil.report.summary import load_summary
from hil.report.tail import TAIL_LINES
from hil.results import CaseResult, RunResult, Verdict
from tests.report_samples import T0, sample_run

# Tags the report itself uses; anything else in the page came from data and escaped badly.
OUR_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "section", "div", "h1", "h2",
    "h3", "h4", "span", "dl", "dt", "dd", "table", "thead", "tbody", "tr", "th", "td", "a",
    "details", "summary", "p", "b", "pre", "footer", "i", "svg", "defs", "lineargradient",
    "stop", "line", "text", "rect", "wbr", "g",
}  # fmt: skip


class Page(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.attrs: set[str] = set()
        self.svgs = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        found = dict(attrs)
        self.attrs |= found.keys()
        if "id" in found:
            self.ids.add(found["id"])
        if tag == "a":
            self.hrefs.append(found["href"])
        self.svgs += tag == "svg"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[RunResult, Path, dict[str, Path]]:
    run_dir = tmp_path_factory.mktemp("run")
    run = sample_run(run_dir)
    return run, run_dir, write_reports(run, run_dir)


def suites(root: ET.Element) -> dict[str, ET.Element]:
    return {s.get("name"): s for s in root.iter("testsuite")}


def test_all_three_reports_land_in_the_run_directory(written):
    _, run_dir, paths = written
    assert paths == {
        "html": run_dir / "report.html",
        "junit": run_dir / "junit.xml",
        "summary": run_dir / "summary.json",
    }
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    # Readable by the web server that publishes nightly results, not only by the lab user.
    assert {p.stat().st_mode & 0o777 for p in paths.values()} == {0o644}


def test_summary_holds_the_run_its_counts_and_exit_code(written):
    run, _, paths = written
    document = json.loads(paths["summary"].read_text())
    assert document["counts"] == {"pass": 6, "fail": 2, "infra_error": 1, "not_run": 1}
    assert document["exit_code"] == 1
    assert load_summary(paths["summary"]) == run


def test_junit_counts_per_board_and_overall(written):
    _, _, paths = written
    root = ET.parse(paths["junit"]).getroot()
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "10",
        "failures": "2",
        "errors": "2",
        "skipped": "0",
    }
    juno = suites(root)["juno-r2"]
    assert [juno.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["4", "1", "1", "0"]
    assert [(c.get("classname"), c.get("name")) for c in juno.iter("testcase")] == [
        ("juno-r2", "ffa-v1.1-basic"),
        ("juno-r2", "bit15-ids"),
        ("juno-r2", "desc-v1.3-size"),
        ("juno-r2", "vm-to-vm"),
    ]


def test_junit_failure_carries_message_and_diff_without_markup_or_escapes(written):
    run, _, paths = written
    root = ET.parse(paths["junit"]).getroot()
    case = next(c for c in root.iter("testcase") if c.get("classname") == "juno-r2")
    failure = next(root.iter("failure"))
    expected = next(c for c in run.cases if c.verdict is Verdict.FAIL)
    assert failure.get("message") == expected.message
    text = failure.text or ""
    assert "-(XEN) ffa: Secure partition with id 0x0042 cannot be used" in text
    # The hostile line is there as text, minus the terminal escapes.
    assert "<script>alert(1)</script>" in text and "\x1b" not in text and "pwned" not in text
    assert case.find("failure") is None  # the first juno case passed


def test_junit_error_shows_the_console_tail_and_marks_not_run(written):
    _, _, paths = written
    root = ET.parse(paths["junit"]).getroot()
    error = next(e for e in root.iter("error") if e.get("type") == "infra_error")
    assert error.get("type") == "infra_error"
    assert "no 'xen' marker" in error.get("message")
    assert "last lines of console uart0:" in error.text
    assert "uart0 line 39" in error.text and "uart0 line 0\n" not in error.text
    # Not run is an error too (exit 3), never a <skipped> a CI server would show green.
    not_run = [
        c.get("name") for c in root.iter("testcase") if c.find("error[@type='not_run']") is not None
    ]
    assert not_run == ["vm-to-vm"] and root.find(".//skipped") is None


def test_junit_failures_and_errors_carry_the_console_tail_and_files_in_system_out(written):
    _, _, paths = written
    root = ET.parse(paths["junit"]).getroot()
    for case in root.iter("testcase"):
        out = case.find("system-out")
        # A case not run has no captures to show.
        if case.find("failure") is None and case.find("error[@type='infra_error']") is None:
            assert out is None
            continue
        text = out.text or ""
        board, scenario = case.get("classname"), case.get("name")
        assert "last lines of console uart0:" in text and "last lines of console uart1:" in text
        assert "uart1 line 39" in text and "uart1 line 0\n" not in text
        assert f"console:uart0:raw: {board}/{scenario}/uart0.raw" in text
        assert "pwned" not in text and "\x1b" not in text


def test_junit_times_are_wall_clock_times(tmp_path):
    def case(board: str, scenario: str, start_s: float) -> CaseResult:
        return CaseResult(board, scenario, Verdict.PASS, T0 + timedelta(seconds=start_s), 10.0)

    # Two boards checked in parallel, two 10 s cases each, in a run that took 21 s.
    cases = [case(b, s, 10.0 * i) for b in ("b0", "b1") for i, s in enumerate(("s0", "s1"))]
    run = RunResult("r", "lab", T0, T0 + timedelta(seconds=21), cases)
    root = ET.fromstring(junit.render_junit(run, tmp_path))
    assert root.get("time") == "21.000"  # not 40: the boards ran at the same time
    assert [s.get("time") for s in root.iter("testsuite")] == ["20.000", "20.000"]
    assert {c.get("time") for c in root.iter("testcase")} == {"10.000"}


def test_junit_properties_carry_run_and_case_provenance(written):
    _, _, paths = written
    root = ET.parse(paths["junit"]).getroot()
    suite_props = {
        p.get("name"): p.get("value") for p in suites(root)["qemu-virt"].find("properties")
    }
    assert suite_props["run_id"] == "20261124T020000Z-4b1f0c"
    assert suite_props["lab_file"] == "labs/nightly.toml"
    assert suite_props["host"] == "lab-ctl-01"
    case = next(root.iter("testcase"))
    props = {p.get("name"): p.get("value") for p in case.find("properties")}
    assert props["bl31.bin"] == "sha256:" + "3f" * 32
    assert props["expected_profile"] == "xen-4.22"
    assert props["artifact:events"] == "fvp-base-revc/ffa-v1.1-basic/events.json"


def one_case_run(message: str, diff: list[str], verdict: Verdict) -> RunResult:
    case = CaseResult("b", "s", verdict, T0, 1.0, message, diff, provenance={message[:10]: message})
    return RunResult("r", message, T0, None, [case], provenance={"p": message})


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(), st.lists(st.text(), max_size=3), st.sampled_from(Verdict))
def test_any_console_text_gives_well_formed_junit_and_inert_html(tmp_path, message, diff, verdict):
    run = one_case_run(message, diff, verdict)
    ET.fromstring(junit.render_junit(run, tmp_path))  # raises on a character XML forbids
    page = html.render_html(run, tmp_path).decode()
    assert Page(page).tags <= OUR_TAGS
    assert "\x1b" not in page


def test_xml_forbidden_characters_are_dropped(tmp_path):
    run = one_case_run("nul\x00 esc\x1b[0m bad\ufffe\uffff end", ["-a\x01", "+b\x0c"], Verdict.FAIL)
    failure = ET.fromstring(junit.render_junit(run, tmp_path)).find(".//failure")
    assert failure.get("message") == "nul esc bad end"
    assert failure.text == "-a\n+b"


def test_html_escapes_hostile_console_text_everywhere(written):
    _, _, paths = written
    page = paths["html"].read_text()
    parsed = Page(page)
    assert parsed.tags <= OUR_TAGS
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "\x1b" not in page and "\x07" not in page and "pwned" not in page


def test_html_is_self_contained(written):
    _, _, paths = written
    page = paths["html"].read_text()
    assert "http://" not in page and "https://" not in page
    attrs = Page(page).attrs
    assert "<link" not in page and "src" not in attrs
    assert not [a for a in attrs if a.startswith("on")]


def test_html_links_every_artifact_and_every_matrix_cell_to_a_case(written):
    run, _, paths = written
    parsed = Page(paths["html"].read_text())
    for case in run.cases:
        for path in case.artifacts.values():
            assert path in parsed.hrefs
    anchors = [h for h in parsed.hrefs if h.startswith("#")]
    assert len(anchors) == len(run.cases)
    assert {a[1:] for a in anchors} <= parsed.ids


def test_html_artifact_links_cannot_break_out_of_the_attribute(tmp_path):
    evil = 'x"><script>alert(1)</script>/javascript:alert(1)'
    case = CaseResult("b", "s", Verdict.PASS, T0, 1.0, artifacts={"events": evil})
    page = html.render_html(RunResult("r", "lab", T0, None, [case]), tmp_path).decode()
    parsed = Page(page)
    assert parsed.tags <= OUR_TAGS
    assert [h for h in parsed.hrefs if not h.startswith("#")] == [
        "x%22%3E%3Cscript%3Ealert%281%29%3C/script%3E/javascript%3Aalert%281%29"
    ]


def test_html_has_one_timeline_per_case_with_stages(written):
    run, _, paths = written
    page = paths["html"].read_text()
    with_stages = sum(1 for c in run.cases if c.stages)
    assert Page(page).svgs == with_stages == 9
    # The infra case's timeline names where it stopped; the panic shows as a panic.
    assert "stopped at <b>xen</b> (timeout)" in page
    assert "panic after" in page


def test_html_shows_diff_for_failures_and_console_tail_for_infra_errors(written):
    _, _, paths = written
    page = paths["html"].read_text()
    assert page.count('<pre class="diff">') == 2
    assert page.count('<div class="console">') == 2  # uart0 and uart1 of the infra case
    assert "uart0 line 39" in page
    # 40 numbered lines and a hostile one: the tail starts TAIL_LINES from the end.
    assert f"uart0 line {41 - TAIL_LINES}\n" in page
    assert f"uart0 line {40 - TAIL_LINES}\n" not in page


def test_html_lists_failures_before_passes_and_folds_passing_cases(written):
    _, _, paths = written
    page = paths["html"].read_text()
    first_fail = page.index('<span class="badge v-fail">')
    first_pass = page.index('<span class="badge v-pass">')
    assert first_fail < first_pass
    assert page.count("<details") == 10 and page.count("<details") - page.count(" open>") == 6


def test_a_missing_console_log_is_reported_not_fatal(tmp_path):
    case = CaseResult(
        "b", "s", Verdict.INFRA_ERROR, T0, 1.0, "lost", artifacts={"console:u0:log": "gone.log"}
    )
    page = html.render_html(RunResult("r", "lab", T0, None, [case]), tmp_path).decode()
    assert "(console log gone.log unreadable: No such file or directory)" in page


def test_a_crash_mid_write_leaves_no_partial_report(tmp_path, monkeypatch):
    run = sample_run(tmp_path)
    write_reports(run, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    calls = []

    def crash_on_second(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", crash_on_second)
    changed = RunResult(run.run_id, "other.toml", run.started, run.finished, run.cases)
    with pytest.raises(OSError, match="No space left"):
        write_reports(changed, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(before)
    # report.html was replaced whole; junit.xml (crashed) and summary.json kept their old content.
    assert "other.toml" in (tmp_path / "report.html").read_text()
    assert (tmp_path / "junit.xml").read_bytes() == before["junit.xml"]
    assert (tmp_path / "summary.json").read_bytes() == before["summary.json"]


def test_a_rendering_error_writes_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("template bug")

    monkeypatch.setattr(html, "render_html", broken)
    with pytest.raises(RuntimeError):
        write_reports(sample_run(tmp_path), tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.is_file()]


def test_the_timeline_of_a_retried_case_shows_every_attempt(written):
    run, _, paths = written
    page = paths["html"].read_text()
    infra = next(c for c in run.cases if c.verdict is Verdict.INFRA_ERROR)
    assert len(infra.boots) == 3
    assert page.count('class="tl-attempt"') == 3
    for n in (1, 2, 3):
        assert f"<title>attempt {n}: infra error at xen after 41.0 s: stall</title>" in page


@pytest.mark.parametrize(
    ("boards", "scenarios", "rows"),
    [(4, 22, "scen"), (5, 3, "board")],
)
def test_html_matrix_runs_the_longer_of_boards_and_scenarios_down_the_page(
    tmp_path, boards, scenarios, rows
):
    cases = [
        CaseResult(f"board{b}", f"scen{s}", Verdict.PASS, T0, 1.0)
        for b in range(boards)
        for s in range(scenarios)
    ]
    page = html.render_html(RunResult("r", "lab", T0, None, cases), tmp_path).decode()
    start = page.index('<table class="matrix')
    matrix = page[start : page.index("</table>", start)]
    across = matrix[: matrix.index("</thead>")]
    assert across.count("<th>") == 1 + min(boards, scenarios)
    assert matrix.count("<tr>") == 1 + max(boards, scenarios)
    first_row = matrix[matrix.index("<tbody><tr><th>") :]
    assert first_row.startswith(f"<tbody><tr><th>{rows}0</th>")
