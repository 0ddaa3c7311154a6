"""The boot-stage timeline of one case as inline SVG: a row per stage, grouped into one lane per
console, bars on a shared time axis coloured by how the stage ended. When a case needed more than
one boot (or its boot failed), a first lane shows every attempt, so the time spent on retries is
visible; the stages shown are the last attempt's, placed at its start on the case's clock.
Hovering a bar shows its exact timings (SVG <title>), so no script is needed."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from hil.results import BootOutcome, BootRecord, CaseResult, StageStatus, StageTiming
from hil.terminal import neutralise

WIDTH = 1100
LABEL_W = 190
RIGHT_PAD = 96
ROW_H = 18
BAR_H = 11
LANE_GAP = 6
AXIS_H = 22

STATUS_COLOURS = {
    StageStatus.OK: "#2da44e",
    StageStatus.TIMEOUT: "#d4a72c",
    StageStatus.PANIC: "#cf222e",
    StageStatus.NOT_REACHED: "#afb8c1",
}


def _e(text: str) -> str:
    return escape(neutralise(text), quote=True)


def _nice_step(span: float, target_ticks: int = 8) -> float:
    """A 1/2/5 x 10^k tick step giving about ``target_ticks`` ticks over ``span``."""
    raw = span / target_ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


OUTCOME_COLOURS = {
    BootOutcome.BOOTED: STATUS_COLOURS[StageStatus.OK],
    BootOutcome.INFRA_ERROR: STATUS_COLOURS[StageStatus.TIMEOUT],
    BootOutcome.PANIC: STATUS_COLOURS[StageStatus.PANIC],
}
ATTEMPTS_LANE = "boot attempts"


def _stage_offset(case: CaseResult) -> float:
    """Where the last boot attempt (the one the stages describe) started on the case's clock."""
    return case.boots[-1].start_s if case.boots else 0.0


def _shows_attempts(case: CaseResult) -> bool:
    return len(case.boots) > 1 or any(b.outcome is not BootOutcome.BOOTED for b in case.boots)


def _axis_end(case: CaseResult) -> float:
    offset = _stage_offset(case)
    times = [case.duration_s, *(b.end_s for b in case.boots)]
    for s in case.stages:
        times += [t + offset for t in (s.start_s, s.end_s) if t is not None]
    return max(max(times), 0.001)


def _attempt_bar(boot: BootRecord, y: float, x_of: Callable[[float], float]) -> list[str]:
    colour = OUTCOME_COLOURS[boot.outcome]
    mid = y + ROW_H / 2
    x0, x1 = x_of(boot.start_s), x_of(boot.end_s)
    width = max(x1 - x0, 1.5)
    span = _seconds(boot.end_s - boot.start_s)
    outcome = boot.outcome.value.replace("_", " ")
    where = f" at {boot.stopped_at}" if boot.stopped_at else ""
    tip = f"attempt {boot.number}: {outcome}{where} after {span}" + (
        f": {boot.error}" if boot.error else ""
    )
    return [
        f'<text x="{LABEL_W - 8}" y="{mid + 4:.1f}" class="tl-stage">attempt {boot.number}</text>',
        f'<rect x="{x0:.1f}" y="{mid - BAR_H / 2:.1f}" width="{width:.1f}" height="{BAR_H}" '
        f'rx="2" fill="{colour}" class="tl-attempt"><title>{_e(tip)}</title></rect>',
        f'<text x="{x0 + width + 4:.1f}" y="{mid + 4:.1f}" class="tl-note">'
        f"{_e(f'{outcome}{where}, {span}')}</text>",
    ]


def _lanes(stages: list[StageTiming]) -> dict[str, list[StageTiming]]:
    lanes: dict[str, list[StageTiming]] = {}
    for stage in stages:
        lanes.setdefault(stage.console, []).append(stage)
    return lanes


def _bar(
    stage: StageTiming, y: float, x_of: Callable[[float], float], t_end: float, offset: float
) -> list[str]:
    colour = STATUS_COLOURS[stage.status]
    mid = y + ROW_H / 2
    if stage.start_s is None:
        return [
            f'<text x="{LABEL_W + 4}" y="{mid + 4:.1f}" class="tl-note">not reached</text>',
        ]
    end = stage.end_s if stage.end_s is not None else t_end - offset
    x0, x1 = x_of(stage.start_s + offset), x_of(end + offset)
    width = max(x1 - x0, 1.5)
    span = end - stage.start_s
    if stage.status is StageStatus.OK:
        note = _seconds(span)
    else:
        note = f"{stage.status.value.replace('_', ' ')} after {_seconds(span)}"
    tip = (
        f"{stage.console} / {stage.name}: {stage.status.value}, "
        f"{_seconds(stage.start_s)} to {_seconds(end) if stage.end_s is not None else 'never'}"
    )
    # Unfinished stages fade out towards the end of the axis: they never reached a marker.
    fill = colour if stage.end_s is not None else f"url(#open-{stage.status.value})"
    return [
        f'<rect x="{x0:.1f}" y="{mid - BAR_H / 2:.1f}" width="{width:.1f}" height="{BAR_H}" '
        f'rx="2" fill="{fill}" stroke="{colour}" stroke-width="0.6">'
        f"<title>{_e(tip)}</title></rect>",
        f'<text x="{x0 + width + 4:.1f}" y="{mid + 4:.1f}" class="tl-note">{_e(note)}</text>',
    ]


def render_timeline(case: CaseResult) -> str:
    """Inline SVG of the case's stages, or an empty string when it recorded none."""
    if not case.stages:
        return ""
    t_end = _axis_end(case)
    plot_w = WIDTH - LABEL_W - RIGHT_PAD
    step = _nice_step(t_end)
    t_axis = math.ceil(t_end / step - 1e-9) * step

    def x_of(t: float) -> float:
        return LABEL_W + plot_w * t / t_axis

    lanes = _lanes(case.stages)
    attempts = case.boots if _shows_attempts(case) else []
    offset = _stage_offset(case)
    rows_h = sum(len(stages) * ROW_H for stages in lanes.values()) + len(attempts) * ROW_H
    height = AXIS_H + rows_h + LANE_GAP * (len(lanes) + bool(attempts)) + 4
    out = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" '
        f'aria-label="boot stage timeline of {_e(case.board)} / {_e(case.scenario)}">',
        "<defs>",
    ]
    for status in (StageStatus.TIMEOUT, StageStatus.PANIC):
        colour = STATUS_COLOURS[status]
        out.append(
            f'<linearGradient id="open-{status.value}"><stop offset="0" stop-color="{colour}"/>'
            f'<stop offset="1" stop-color="{colour}" stop-opacity="0.15"/></linearGradient>'
        )
    out.append("</defs>")
    # Ticks and grid first so bars draw over them.
    grid_bottom = height - AXIS_H
    tick = 0.0
    while tick <= t_axis + 1e-9:
        x = x_of(tick)
        out.append(
            f'<line x1="{x:.1f}" y1="2" x2="{x:.1f}" y2="{grid_bottom}" class="tl-grid"/>'
            f'<text x="{x:.1f}" y="{height - 7}" class="tl-tick">{tick:g} s</text>'
        )
        tick += step
    y = 2.0
    if attempts:
        out.append(
            f'<g class="tl-attempts"><rect x="0" y="{y:.1f}" width="{WIDTH}" '
            f'height="{len(attempts) * ROW_H}" class="tl-lane-b"/>'
            f'<text x="6" y="{y + 12:.1f}" class="tl-console">{ATTEMPTS_LANE}</text>'
        )
        for boot in attempts:
            out += _attempt_bar(boot, y, x_of)
            y += ROW_H
        out.append("</g>")
        y += LANE_GAP
    for index, (console, stages) in enumerate(lanes.items()):
        lane_h = len(stages) * ROW_H
        shade = "tl-lane-a" if index % 2 == 0 else "tl-lane-b"
        out.append(
            f'<rect x="0" y="{y:.1f}" width="{WIDTH}" height="{lane_h}" class="{shade}"/>'
            # A stage that never showed up was seen on no console.
            f'<text x="6" y="{y + 12:.1f}" class="tl-console">{_e(console or "not seen")}</text>'
        )
        for stage in stages:
            out.append(
                f'<text x="{LABEL_W - 8}" y="{y + ROW_H / 2 + 4:.1f}" class="tl-stage">'
                f"{_e(stage.name)}</text>"
            )
            out += _bar(stage, y, x_of, t_end, offset)
            y += ROW_H
        y += LANE_GAP
    out.append("</svg>")
    return "".join(out)
