"""A review as people and programs read it: the terminal summary (one line per scenario, then its
first differing lines), ``diff.json`` (also ``--json`` on stdout) and ``diff.html`` (side by side
per scenario). Console text is untrusted: made inert for the terminal, escaped in HTML."""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from hil.atomic import atomic_write
from hil.diff.compare import LineDiff, Review, ScenarioDiff, Status
from hil.terminal import columns, neutralise

SHOWN_LINES = 4  # differing lines the terminal shows per scenario and side; diff.html has them all


def _inert(text: str) -> str:
    return neutralise(text).replace("\n", " ")


def describe(side: Mapping[str, Any]) -> str:
    """A side in a few words: its input, Xen version and the profile it is judged against."""
    facts = [side.get("xen:version"), side.get("profile")]
    detail = ", ".join(str(f) for f in facts if f)
    return _inert(f"{side['input']}" + (f" ({detail})" if detail else ""))


def _counts(diff: LineDiff | None) -> str:
    if diff is None or not diff.differs:
        return ""
    return f"-{len(diff.removed)} +{len(diff.added)}"


def summary_lines(review: Review, shown: int = SHOWN_LINES) -> list[str]:
    """The terminal summary: each side, then one line per scenario followed by its first
    differing lines. Changes every differing scenario shares (a version bump, a new ABI probed)
    are listed once above the scenarios, so each scenario shows what is its own."""
    common = _common_changes(review)
    rows: list[tuple[str, ...]] = []
    details: dict[int, list[str]] = {}
    for scenario in review.scenarios:
        details[len(rows)] = _first_changes(scenario, shown, common)
        rows.append((scenario.name, scenario.status.value, _inert(_what(scenario))))
    out = [f"base: {describe(review.base)}", f"head: {describe(review.head)}"]
    if common:
        out.append(f"in every scenario that differs ({len(common)} lines):")
        out += [f"    {_inert(line)}" for line in _ordered(review, common)]
    for index, line in enumerate(columns(rows)):
        out.append(line.rstrip())
        out += details[index]
    counts = ", ".join(f"{review.count(s)} {s.value}" for s in Status)
    where = f"; {review.run_dir}/diff.html" if review.run_dir else ""
    out.append(
        f"{len(review.scenarios)} scenarios: {counts} -> exit {int(review.exit_code)}{where}"
    )
    return out


def _what(scenario: ScenarioDiff) -> str:
    """The scenario line's last column: sizes of the change, why it was not compared, and a
    side that failed its own profile (or recording)."""
    if scenario.status is Status.NOT_COMPARED:
        return scenario.why_not_compared()
    parts = [
        f"{label} {_counts(d)}"
        for label, d in (("xen", scenario.xen), ("guest", scenario.guest))
        if _counts(d)
    ]
    for name, side in (("base", scenario.base), ("head", scenario.head)):
        if side.verdict == "fail":
            parts.append(f"{name} fails {side.expected}")
    return ", ".join(parts)


def _common_changes(review: Review) -> set[str]:
    differing = [s for s in review.scenarios if s.status is Status.DIFFERS]
    if len(differing) < 2:
        return set()
    return set.intersection(*(set(s.changes()) for s in differing))


def _ordered(review: Review, common: set[str]) -> list[str]:
    """``common`` in the order the first differing scenario shows them."""
    first = next(s for s in review.scenarios if s.status is Status.DIFFERS)
    return list(dict.fromkeys(line for line in first.changes() if line in common))


def _first_changes(scenario: ScenarioDiff, shown: int, common: set[str]) -> list[str]:
    """The first differing lines of Xen's side and of the guest's not already listed as
    common (a Xen change often shows in both, and the guest's is what a reviewer asks about)."""
    lines, hidden = [], 0
    for part in (scenario.xen, scenario.guest):
        changes = [c for c in (part.changes() if part else ()) if c not in common]
        lines += [f"    {_inert(line)}" for line in changes[:shown]]
        hidden += max(0, len(changes) - shown)
    if hidden:
        lines.append(f"    ... {hidden} more differing lines in diff.html")
    return lines


def write_json(review: Review, path: Path) -> str:
    text = json.dumps(review.to_json(), indent=1) + "\n"
    atomic_write(path, text.encode(), sync=False)
    return text


_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;max-width:1400px}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td,th{border:1px solid #ddd;padding:2px 6px;vertical-align:top;text-align:left}
td{font:12px ui-monospace,monospace;white-space:pre-wrap;overflow-wrap:anywhere}
.del{background:#fde2e2}.ins{background:#dcf5dc}.empty{background:#f6f6f6}
.same{color:#2a6b2a}.differs{color:#a33}.not-compared{color:#a60}
section{margin:1.5em 0}h2{font-size:16px}dl{display:grid;grid-template-columns:8em 1fr}
"""


def _side_by_side(title: str, diff: LineDiff | None) -> str:
    if diff is None:
        return ""
    body = []
    for tag, old, new in diff.rows:
        for i in range(max(len(old), len(new))):
            left = old[i] if i < len(old) else None
            right = new[i] if i < len(new) else None
            lcls = "" if tag == "equal" else ("del" if left is not None else "empty")
            rcls = "" if tag == "equal" else ("ins" if right is not None else "empty")
            body.append(
                f"<tr><td class='{lcls}'>{escape(left or '')}</td>"
                f"<td class='{rcls}'>{escape(right or '')}</td></tr>"
            )
    rows = "".join(body) or "<tr><td colspan='2'>(nothing)</td></tr>"
    return f"<h3>{escape(title)}</h3><table><tr><th>base</th><th>head</th></tr>{rows}</table>"


def _provenance(name: str, side: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<dt>{escape(str(k))}</dt><dd>{escape(v if isinstance(v, str) else json.dumps(v))}</dd>"
        for k, v in side.items()
    )
    return f"<h2>{escape(name)}</h2><dl>{rows}</dl>"


def render_html(review: Review) -> bytes:
    sections = []
    for s in review.scenarios:
        status = s.status.value
        verdicts = ", ".join(
            f"{side}: {v.verdict}" + (f" vs {v.expected}" if v.expected else "")
            for side, v in (("base", s.base), ("head", s.head))
        )
        why = f"<p>{escape(s.why_not_compared())}</p>" if s.status is Status.NOT_COMPARED else ""
        links = " ".join(
            f"<a href='{escape(side.captures)}/'>{name} captures</a>"
            for name, side in (("base", s.base), ("head", s.head))
            if side.captures
        )
        why += f"<p>{links}</p>" if links else ""
        sections.append(
            f"<section id='{escape(s.name)}'><h2>{escape(s.name)}: "
            f"<span class='{status.replace(' ', '-')}'>{escape(status)}</span></h2>"
            f"<p>{escape(verdicts)}</p>{why}"
            f"{_side_by_side('Xen FF-A lines', s.xen)}"
            f"{_side_by_side('guest view (probe transcript)', s.guest)}</section>"
        )
    counts = ", ".join(f"{review.count(st)} {st.value}" for st in Status)
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        f"<title>hil diff</title><style>{_CSS}</style></head><body>"
        f"<h1>hil diff: {escape(counts)} (exit {int(review.exit_code)})</h1>"
        "<p><a href='report.html'>both sides' run (report.html)</a></p>"
        f"{_provenance('base', review.base)}{_provenance('head', review.head)}"
        f"{''.join(sections)}</body></html>\n"
    )
    return page.encode()


def write_html(review: Review, path: Path) -> None:
    atomic_write(path, render_html(review), sync=False)
