"""The three reports of a run: summary.json, junit.xml, report.html, written into its run
directory. All are rendered before any is written, and each is written atomically, so a crash
never leaves a half-written or mismatched report claiming success."""

from __future__ import annotations

from pathlib import Path

from hil.atomic import atomic_write
from hil.report import html, junit, summary
from hil.results import RunResult


def write_reports(run: RunResult, run_dir: Path) -> dict[str, Path]:
    """Write the reports of ``run`` into ``run_dir``; returns kind (summary/junit/html) -> path."""
    rendered = {
        "summary": (summary.FILE_NAME, summary.render_summary(run)),
        "junit": (junit.FILE_NAME, junit.render_junit(run, run_dir)),
        "html": (html.FILE_NAME, html.render_html(run, run_dir)),
    }
    paths: dict[str, Path] = {}
    for kind, (name, data) in rendered.items():
        path = run_dir / name
        atomic_write(path, data)
        paths[kind] = path
    return paths
