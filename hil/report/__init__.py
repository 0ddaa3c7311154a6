"""The three reports of a run: report.html, junit.xml, summary.json, written into its run
directory. All are rendered before any is written and each is written atomically, so a crash
leaves every report either complete or as it was, never half-written. summary.json goes last:
it is the record dashboards trust, so it never describes reports that were not written."""

from __future__ import annotations

from pathlib import Path

from hil.atomic import atomic_write
from hil.report import html, junit, summary
from hil.results import RunResult


def write_reports(run: RunResult, run_dir: Path) -> dict[str, Path]:
    """Write the reports of ``run`` into ``run_dir``; returns kind (html/junit/summary) -> path."""
    rendered = {
        "html": (html.FILE_NAME, html.render_html(run, run_dir)),
        "junit": (junit.FILE_NAME, junit.render_junit(run, run_dir)),
        "summary": (summary.FILE_NAME, summary.render_summary(run)),
    }
    paths: dict[str, Path] = {}
    for kind, (name, data) in rendered.items():
        path = run_dir / name
        atomic_write(path, data)
        paths[kind] = path
    return paths
