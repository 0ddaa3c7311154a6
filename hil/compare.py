"""compare(expected, observed): the heart of a check. Both sides are rendered to the same text
(Xen's FF-A console lines, then the probe's HILPROBE lines) so a mismatch reads as a unified diff
a firmware engineer can act on."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from hil.probe import ProbePlan, ProbeTranscript, format_transcript
from hil.xen.messages import FFA_KEYS
from hil.xen.oracle import Expectation


@dataclass(frozen=True)
class Observation:
    """What the board showed: Xen's FF-A console lines (text after ``(XEN) ``, in order) and the
    probe's answers."""

    xen_lines: Sequence[str]
    transcript: ProbeTranscript


def expected_text(expected: Expectation, plan: ProbePlan) -> list[str]:
    xen_lines = [line.text for line in expected.boot.lines if line.key in FFA_KEYS]
    return _as_text(xen_lines, expected.transcript, plan)


def observed_text(observed: Observation, plan: ProbePlan) -> list[str]:
    return _as_text(observed.xen_lines, observed.transcript, plan)


def _as_text(xen_lines: Sequence[str], transcript: ProbeTranscript, plan: ProbePlan) -> list[str]:
    """Both sides in one form: Xen's lines as the console shows them, then the probe's lines
    with the registers its answers leave undefined shown as such."""
    probe = format_transcript(transcript, plan, judged=True)
    return [f"(XEN) {text}" for text in xen_lines] + list(probe)


def compare(expected: Expectation, observed: Observation, plan: ProbePlan) -> list[str]:
    """The diff expected vs observed; empty when the board behaved as the profile says."""
    return list(
        difflib.unified_diff(
            expected_text(expected, plan),
            observed_text(observed, plan),
            fromfile=f"expected ({expected.profile})",
            tofile="observed",
            lineterm="",
            n=2,
        )
    )
