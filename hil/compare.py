"""compare(expected, observed): the heart of a check. Both sides are rendered to the same text
(Xen's FF-A console lines, then the probe's HILPROBE lines, or the Linux guest's HILLINUX view)
so a mismatch reads as a unified diff a firmware engineer can act on."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from hil.guest.linux_log import PREFIX as LINUX_PREFIX
from hil.guest.linux_log import LinuxView
from hil.probe import ProbePlan, ProbeTranscript, format_transcript
from hil.xen.messages import FFA_KEYS
from hil.xen.oracle import Expectation


@dataclass(frozen=True)
class Observation:
    """What the board showed: Xen's FF-A console lines (text after ``(XEN) ``, in order) and the
    probe's answers."""

    xen_lines: Sequence[str]
    transcript: ProbeTranscript
    # What the Linux guest's FF-A driver reported, when dom0 was Linux (hil.guest); its
    # transcript is then empty.
    linux: LinuxView | None = None


def _expected_xen(expected: Expectation) -> list[str]:
    return [line.text for line in expected.boot.lines if line.key in FFA_KEYS]


def expected_text(expected: Expectation, plan: ProbePlan) -> list[str]:
    return _as_text(_expected_xen(expected), expected.transcript, plan)


def observed_text(observed: Observation, plan: ProbePlan) -> list[str]:
    return _as_text(observed.xen_lines, observed.transcript, plan)


def _as_text(xen_lines: Sequence[str], transcript: ProbeTranscript, plan: ProbePlan) -> list[str]:
    """Both sides in one form: Xen's lines as the console shows them, then the probe's lines
    with the registers its answers leave undefined shown as such."""
    probe = format_transcript(transcript, plan, judged=True)
    return [f"(XEN) {text}" for text in xen_lines] + list(probe)


def compare(expected: Expectation, observed: Observation, plan: ProbePlan) -> list[str]:
    """The diff expected vs observed; empty when the board behaved as the profile says."""
    return _diff(expected_text(expected, plan), observed_text(observed, plan), expected.profile)


def _linux_text(xen_lines: Sequence[str], view: LinuxView | None) -> list[str]:
    guest = [f"{LINUX_PREFIX}{line}" for line in view.render()] if view else []
    return [f"(XEN) {text}" for text in xen_lines] + (guest or [f"{LINUX_PREFIX}(no view)"])


def compare_linux(expected: Expectation, linux: LinuxView, observed: Observation) -> list[str]:
    """The diff for a board whose dom0 is the Linux guest: Xen's FF-A lines against the
    oracle's boot lines (``expected``), as for the probe, then the driver's view (its version
    line and one line per registered device, hil.guest.linux_log) against ``linux``
    (hil.guest.linux_oracle.expect_linux); empty when both agree."""
    return _diff(
        _linux_text(_expected_xen(expected), linux),
        _linux_text(observed.xen_lines, observed.linux),
        expected.profile,
    )


def _diff(expected: list[str], observed: list[str], profile: str) -> list[str]:
    return list(
        difflib.unified_diff(
            expected, observed, f"expected ({profile})", "observed", lineterm="", n=2
        )
    )
