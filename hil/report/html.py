"""report.html: one self-contained page (no scripts, no external resources) a lab engineer opens
from a nightly's artifacts: verdict matrix, then per case the message, stage timeline, diff,
console tail and the files behind it. All console-derived and user-provided text is escaped."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from string import Template
from urllib.parse import quote

from hil import __version__
from hil.errors import ExitCode
from hil.report.tail import console_tails
from hil.report.timeline import STATUS_COLOURS, render_timeline
from hil.results import CaseResult, RunResult, StageStatus, Verdict
from hil.terminal import neutralise

FILE_NAME = "report.html"

VERDICT_LABELS = {
    Verdict.PASS: "pass",
    Verdict.FAIL: "fail",
    Verdict.INFRA_ERROR: "infra error",
    Verdict.NOT_RUN: "not run",
}
EXIT_MEANING = {
    ExitCode.OK: "all checks passed",
    ExitCode.CHECK_FAILED: "a check failed: firmware or Xen did not behave as expected",
    ExitCode.INFRA: "the lab could not judge every case (infrastructure error or not run)",
}

_CSS = """
:root{--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;--infra_error:#9a6700;
--infra_error-bg:#fff8c5;--not_run:#57606a;--not_run-bg:#eaeef2;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{margin:0;background:#f6f8fa;color:#1f2328;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:20px;margin:0 0 4px;font-weight:600}
h2{font-size:15px;margin:26px 0 8px;text-transform:uppercase;letter-spacing:.04em;
color:var(--muted);font-weight:600}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:14px 16px}
.head{display:flex;justify-content:space-between;gap:24px;align-items:flex-start}
.banner{padding:6px 12px;border-radius:6px;font-weight:600;max-width:45%}
.head>div:first-child{min-width:0;flex:1}
.counts{display:flex;gap:8px;margin-top:12px;flex-wrap:wrap}
.count{padding:2px 10px;border-radius:12px;font-weight:600;font-size:13px}
.v-pass{color:var(--pass);background:var(--pass-bg)}
.v-fail{color:var(--fail);background:var(--fail-bg)}
.v-infra_error{color:var(--infra_error);background:var(--infra_error-bg)}
.v-not_run{color:var(--not_run);background:var(--not_run-bg)}
table{border-collapse:collapse}
.matrix-wrap{overflow-x:auto;max-width:100%}
.matrix{background:#fff;border:1px solid var(--line)}
.matrix th,.matrix td{border:1px solid var(--line);padding:5px 10px;text-align:center}
.matrix thead th{background:#f6f8fa;font-weight:600;font-size:12.5px}
.matrix tbody th{text-align:left;background:#f6f8fa;font-weight:600}
.matrix td a{display:block;font-weight:600;text-transform:uppercase;font-size:12px;color:inherit}
.matrix td .dur{display:block;font-size:11px;opacity:.75;font-weight:400;text-transform:none}
.matrix td.none{color:#8c959f}
.legend{display:flex;gap:14px;color:var(--muted);font-size:12.5px;margin:0 0 10px}
.legend i{display:inline-block;width:18px;height:10px;border-radius:2px;margin-right:5px;
vertical-align:-1px}
.case{margin:0 0 10px;padding:0;overflow:hidden}
.case>summary{display:flex;align-items:center;gap:10px;padding:8px 14px;cursor:pointer;
background:#f6f8fa;list-style:none}
.case>summary::-webkit-details-marker{display:none}
.case>summary::before{content:"\\25B8";color:var(--muted);font-size:11px;width:10px}
.case[open]>summary::before{content:"\\25BE"}
.case[open]>summary{border-bottom:1px solid var(--line)}
.case>summary h3{margin:0;font-size:14.5px;font-weight:600}
.case>summary .right{margin-left:auto;color:var(--muted);font-size:12.5px}
.badge{padding:1px 8px;border-radius:10px;font-size:11.5px;font-weight:700;
text-transform:uppercase;letter-spacing:.03em}
.body{padding:10px 14px 12px}
.message{margin:0 0 8px;font-weight:500}
.facts{color:var(--muted);font-size:12.5px;margin:0 0 10px}
.facts b{color:#1f2328;font-weight:500}
h4{font-size:12px;margin:12px 0 5px;color:var(--muted);text-transform:uppercase;
letter-spacing:.04em}
pre{margin:0;padding:8px 10px;background:#f6f8fa;border:1px solid var(--line);border-radius:4px;
overflow-x:auto;line-height:1.4;white-space:pre-wrap;overflow-wrap:anywhere}
/* column-reverse keeps the scroll at the bottom: the last line is where the board stopped. */
.console{display:flex;flex-direction:column-reverse;max-height:280px;overflow:auto;
border-radius:4px}
.console pre{background:#1f2328;color:#e6edf3;border-color:#1f2328;flex-shrink:0}
.diff .del{background:var(--fail-bg);color:#82071e}
.diff .add{background:var(--pass-bg);color:#044f1e}
.diff .hunk{color:#8250df}
.diff span{display:block}
/* Key/value lists (run facts, artifacts, provenance): keys are often long paths and values
   sha256 digests. Values never break (a digest split over lines cannot be compared by eye);
   paths break only after a separator (<wbr>), so a cell is never narrower than its words. */
.kv{font-size:12.5px;width:100%;margin-top:10px}
.kv td{padding:2px 16px 2px 0;vertical-align:top}
.kv td:first-child{color:var(--muted)}
.kv td:last-child{width:1%}
.kv .digest{white-space:nowrap}
.kv.files td:first-child,.kv.facts td:first-child{width:1%;white-space:nowrap}
.kv.files td:last-child,.kv.facts td:last-child{width:auto}
.timeline{max-width:100%;height:auto;display:block}
.timeline text{font-size:11px;font-family:system-ui,sans-serif;fill:#1f2328}
.timeline .tl-stage{text-anchor:end}
.timeline .tl-console{font-weight:600;fill:var(--muted)}
.timeline .tl-note{fill:var(--muted);font-size:10.5px}
.timeline .tl-tick{text-anchor:middle;fill:var(--muted);font-size:10px}
.timeline .tl-grid{stroke:#d8dee4;stroke-width:.6}
.timeline .tl-lane-a{fill:#f6f8fa}.timeline .tl-lane-b{fill:#fff}
footer{color:var(--muted);font-size:12px;margin-top:24px}
"""

_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
img-src data:">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main>
$header
<h2>Results</h2>
$matrix
<h2>Cases</h2>
$legend
$cases
<footer>Generated by hil $version at $generated.</footer>
</main>
</body>
</html>
"""
)


def _e(text: str) -> str:
    """Untrusted text, inert for a terminal-paste and for HTML (element text and attributes)."""
    return escape(neutralise(text), quote=True)


def _mono(text: str) -> str:
    return f'<span class="mono">{_e(text)}</span>'


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _badge(verdict: Verdict) -> str:
    return f'<span class="badge v-{verdict.value}">{VERDICT_LABELS[verdict]}</span>'


def _path(text: str) -> str:
    """A path (or ``role:path`` key), escaped, breakable only after its separators."""
    return _e(text).replace("/", "/<wbr>")


def _kv_table(rows: list[tuple[str, str]], kind: str = "") -> str:
    """Rows of (key HTML, value HTML)."""
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="kv {kind}">{body}</table>'


def _digest(value: str) -> str:
    return f'<span class="mono digest">{_e(value)}</span>'


def _provenance_key(key: str, run_dir: Path) -> str:
    """``role:/abs/path`` as the reader of this report wants it: paths inside the run directory
    relative to it (where this page is), others whole; either breakable after a separator."""
    role, sep, where = key.partition(":")
    if sep and where.startswith("/"):
        with contextlib.suppress(ValueError, OSError):
            where = str(Path(where).resolve().relative_to(run_dir.resolve()))
    return _path(f"{role}{sep}{where}" if sep else key)


def _exit_meaning(run: RunResult) -> str:
    """What the exit code says; a failed check also says how many cases were not judged."""
    counts = run.counts()
    unjudged = counts[Verdict.INFRA_ERROR] + counts[Verdict.NOT_RUN]
    meaning = EXIT_MEANING[run.exit_code]
    if run.exit_code is ExitCode.CHECK_FAILED and unjudged:
        meaning += f"; {unjudged} not judged (infra error or not run)"
    return meaning


def _header(run: RunResult, run_dir: Path) -> str:
    code = run.exit_code
    tone = {ExitCode.OK: "pass", ExitCode.CHECK_FAILED: "fail"}.get(code, "infra_error")
    rows = [
        ("Lab file", f'<span class="mono">{_path(run.lab_file)}</span>'),
        ("Started", _when(run.started)),
        ("Finished", _when(run.finished) + (" (interrupted)" if run.interrupted else "")),
    ]
    if run.finished is not None:
        rows.append(("Duration", _duration((run.finished - run.started).total_seconds())))
    provenance = [
        (_provenance_key(k, run_dir), _digest(v)) for k, v in sorted(run.provenance.items())
    ]
    counts = "".join(
        f'<span class="count v-{v.value}">{n} {VERDICT_LABELS[v]}</span>'
        for v, n in run.counts().items()
    )
    return (
        '<section class="card"><div class="head"><div>'
        f'<h1>HIL run <span class="mono">{_e(run.run_id)}</span></h1>'
        f"{_kv_table(rows, 'facts')}</div>"
        f'<div class="banner v-{tone}">exit {int(code)} — {_exit_meaning(run)}</div></div>'
        f"{_kv_table(provenance, 'provenance')}"
        f'<div class="counts">{counts}</div></section>'
    )


def _anchor(index: int) -> str:
    # Index-based: board/scenario pairs like ("a--b","c") and ("a","b--c") must not collide.
    return f"case-{index}"


def _matrix_cell(index: int, case: CaseResult) -> str:
    tip = _e(case.message or VERDICT_LABELS[case.verdict])
    return (
        f'<td class="v-{case.verdict.value}" title="{tip}">'
        f'<a href="#{_anchor(index)}">{VERDICT_LABELS[case.verdict]}'
        f'<span class="dur">{_duration(case.duration_s)}</span></a></td>'
    )


def _matrix(run: RunResult) -> str:
    """Verdicts by board and scenario. The longer of the two runs down the page and the shorter
    across it: a nightly of 4 boards x 22 scenarios is 22 rows of 4 cells, which fits any
    window, where 22 columns would push the page sideways."""
    boards = list(dict.fromkeys(c.board for c in run.cases))
    scenarios = list(dict.fromkeys(c.scenario for c in run.cases))
    where = {c.key: (i, c) for i, c in enumerate(run.cases)}
    by_scenario = len(scenarios) > len(boards)
    rows_of, columns_of = (scenarios, boards) if by_scenario else (boards, scenarios)
    corner = "scenario \\ board" if by_scenario else "board \\ scenario"
    head = "".join(f"<th>{_e(name)}</th>" for name in columns_of)
    rows = []
    for row in rows_of:
        cells = []
        for column in columns_of:
            key = (column, row) if by_scenario else (row, column)
            cells.append(_matrix_cell(*where[key]) if key in where else '<td class="none">—</td>')
        rows.append(f"<tr><th>{_e(row)}</th>{''.join(cells)}</tr>")
    return (
        f'<div class="matrix-wrap"><table class="matrix {"by-scenario" if by_scenario else ""}">'
        f"<thead><tr><th>{corner}</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _legend() -> str:
    items = "".join(
        f'<span><i style="background:{colour}"></i>{status.value.replace("_", " ")}</span>'
        for status, colour in STATUS_COLOURS.items()
    )
    return f'<div class="legend"><span>Boot stages:</span>{items}</div>'


def _diff(lines: list[str]) -> str:
    out = []
    for line in lines:
        kind = {"-": "del", "+": "add", "@": "hunk"}.get(line[:1], "ctx")
        out.append(f'<span class="{kind}">{_e(line) or " "}</span>')
    return f'<h4>Expected (&minus;) vs observed (+)</h4><pre class="diff">{"".join(out)}</pre>'


def _stage_summary(case: CaseResult) -> str:
    """Where boot stopped, in words: the first stage that did not end ok."""
    for stage in case.stages:
        if stage.status is not StageStatus.OK:
            return f"stopped at <b>{_e(stage.name)}</b> ({stage.status.value.replace('_', ' ')})"
    return f"all {len(case.stages)} stages reached" if case.stages else ""


def _case(index: int, case: CaseResult, run_dir: Path, run_wide: dict[str, str]) -> str:
    facts = [f"started <b>{_when(case.started)}</b>", f"attempts <b>{case.attempts}</b>"]
    if case.expected_profile:
        facts.append(f"expected profile <b>{_e(case.expected_profile)}</b>")
    if case.board_profile:
        facts.append(f"board profile <b>{_e(case.board_profile)}</b>")
    stage_note = _stage_summary(case)
    if stage_note:
        facts.append(stage_note)
    parts = []
    if case.message:
        parts.append(f'<p class="message">{_e(case.message)}</p>')
    parts.append(f'<p class="facts">{" · ".join(facts)}</p>')
    timeline = render_timeline(case)
    if timeline:
        parts.append(f"<h4>Boot stages</h4>{timeline}")
    if case.diff:
        parts.append(_diff(case.diff))
    if case.verdict is Verdict.INFRA_ERROR:
        for console, lines in console_tails(case, run_dir).items():
            text = "\n".join(escape(line) for line in lines) or "(no output)"
            parts.append(f"<h4>Last console lines: {_e(console)}</h4>")
            parts.append(f'<div class="console"><pre>{text}</pre></div>')
    files = [
        (_e(role), f'<a class="mono" href="{escape(quote(path), quote=True)}">{_path(path)}</a>')
        for role, path in sorted(case.artifacts.items())
    ]
    provenance = [
        (_provenance_key(k, run_dir), _digest(v))
        for k, v in sorted(case.provenance.items())
        if run_wide.get(k) != v  # the run's own facts are in the header
    ]
    if files:
        parts.append(f"<h4>Artifacts</h4>{_kv_table(files, 'files')}")
    if provenance:
        parts.append(f"<h4>Provenance</h4>{_kv_table(provenance, 'provenance')}")
    # Passing cases start folded: the eye should land on what needs attention.
    fold = "" if case.verdict is Verdict.PASS else " open"
    return (
        f'<details class="card case" id="{_anchor(index)}"{fold}><summary>{_badge(case.verdict)}'
        f"<h3>{_e(case.board)} / {_e(case.scenario)}</h3>"
        f'<span class="right">{_duration(case.duration_s)}</span></summary>'
        f'<div class="body">{"".join(parts)}</div></details>'
    )


_SEVERITY = (Verdict.FAIL, Verdict.INFRA_ERROR, Verdict.NOT_RUN, Verdict.PASS)


def _by_severity(cases: list[CaseResult]) -> list[tuple[int, CaseResult]]:
    """Cases with their run index, failures first; the matrix keeps the run order."""
    return sorted(enumerate(cases), key=lambda item: _SEVERITY.index(item[1].verdict))


def render_html(run: RunResult, run_dir: Path, generated: datetime | None = None) -> bytes:
    """The report page; ``run_dir`` is where the case artifacts (console logs) are read from."""
    counts = ", ".join(f"{n} {VERDICT_LABELS[v]}" for v, n in run.counts().items() if n)
    page = _PAGE.substitute(
        title=_e(f"hil run {run.run_id} — {counts or 'no cases'}"),
        css=_CSS,
        header=_header(run, run_dir),
        matrix=_matrix(run) if run.cases else "<p>No cases ran.</p>",
        legend=_legend(),
        cases="\n".join(_case(i, c, run_dir, run.provenance) for i, c in _by_severity(run.cases)),
        version=escape(__version__),
        generated=_when(generated or datetime.now(UTC)),
    )
    return page.encode("utf-8")
