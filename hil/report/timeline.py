"""The boot-stage timeline of one case as inline SVG: a row per stage, grouped into one lane per
console, bars on a shared time axis coloured by how the stage ended. Hovering a bar shows its
exact timings (SVG <title>), so no script is needed."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from hil.results import CaseResult, StageStatus, StageTiming
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


def _axis_end(case: CaseResult) -> float:
    times = [case.duration_s]
    for s in case.stages:
        times += [t for t in (s.start_s, s.end_s) if t is not None]
    return max(max(times), 0.001)


def _lanes(stages: list[StageTiming]) -> dict[str, list[StageTiming]]:
    lanes: dict[str, list[StageTiming]] = {}
    for stage in stages:
        lanes.setdefault(stage.console, []).append(stage)
    return lanes


def _bar(stage: StageTiming, y: float, x_of: Callable[[float], float], t_end: float) -> list[str]:
    colour = STATUS_COLOURS[stage.status]
    mid = y + ROW_H / 2
    if stage.start_s is None:
        return [
            f'<text x="{LABEL_W + 4}" y="{mid + 4:.1f}" class="tl-note">not reached</text>',
        ]
    end = stage.end_s if stage.end_s is not None else t_end
    x0, x1 = x_of(stage.start_s), x_of(end)
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
    rows_h = sum(len(stages) * ROW_H for stages in lanes.values())
    height = AXIS_H + rows_h + LANE_GAP * len(lanes) + 4
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
    for index, (console, stages) in enumerate(lanes.items()):
        lane_h = len(stages) * ROW_H
        shade = "tl-lane-a" if index % 2 == 0 else "tl-lane-b"
        out.append(
            f'<rect x="0" y="{y:.1f}" width="{WIDTH}" height="{lane_h}" class="{shade}"/>'
            f'<text x="6" y="{y + 12:.1f}" class="tl-console">{_e(console)}</text>'
        )
        for stage in stages:
            out.append(
                f'<text x="{LABEL_W - 8}" y="{y + ROW_H / 2 + 4:.1f}" class="tl-stage">'
                f"{_e(stage.name)}</text>"
            )
            out += _bar(stage, y, x_of, t_end)
            y += ROW_H
        y += LANE_GAP
    out.append("</svg>")
    return "".join(out)
