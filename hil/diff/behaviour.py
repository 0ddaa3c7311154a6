"""What one boot of a scenario showed, as the lines a review compares: Xen's FF-A events and the
guest's view (the probe transcript).

Xen's side holds, in console order, every catalogue FF-A message (and a panic) rendered from
its parsed fields (so a timestamp or a glued prefix never shows), and every other line of Xen's
own that speaks of FF-A (``ffa``, ``FF-A``, ``TEE``) or comes during the mediator's init,
normalised (:mod:`hil.diff.normalise`): a printk a change adds or rewords is not in the catalogue
and must still show. Guests' relayed output is not Xen's.

The guest's side is the probe transcript as a check judges it: registers an answer leaves
undefined read ``undefined`` instead of whatever the caller had left in them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hil.diff.normalise import normalise
from hil.probe import ProbePlan, ProbeTranscript, format_transcript
from hil.xen.log import ConsoleLine, Event, Stage, XenMessage, starts_boot
from hil.xen.messages import FFA_KEYS, message

XEN_PREFIX = "(XEN) "
# Catalogue messages a review shows: the FF-A ones, and how a boot failed when a change breaks
# it (the banner is left out: a version bump is not behaviour, and provenance names it).
SHOWN_KEYS = FFA_KEYS | {"panic", "dom0_create_failed"}
# An uncatalogued line of Xen's about FF-A: the mediator's printks all say "ffa" or "FF-A".
_ABOUT_FFA = re.compile(r"\bffa\b|\bFF-A\b|\bTEE\b", re.IGNORECASE)


@dataclass(frozen=True)
class Behaviour:
    """One side of a scenario: Xen's FF-A lines and the guest's probe lines, in order."""

    xen: tuple[str, ...]
    guest: tuple[str, ...]

    def to_json(self) -> dict[str, list[str]]:
        return {"xen": list(self.xen), "guest": list(self.guest)}

    @classmethod
    def from_json(cls, data: object) -> Behaviour:
        """The inverse of :meth:`to_json` (ValueError when ``data`` is not of that form)."""
        if not isinstance(data, dict):
            raise ValueError("expected an object with 'xen' and 'guest'")
        parts = []
        for key in ("xen", "guest"):
            lines = data.get(key)
            if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
                raise ValueError(f"{key!r} must be a list of strings")
            parts.append(tuple(lines))
        return cls(*parts)


def last_boot(events: Sequence[Event]) -> Sequence[Event]:
    """The events of the last boot: a retried boot's capture holds the earlier attempts too."""
    starts = [i for i, event in enumerate(events) if starts_boot(event)]
    return events[starts[-1] :] if starts else events


# The mediator's init runs from its version line to one of these: any line of Xen's own printed
# in between is the mediator's, whatever it says.
_INIT_ENDS = frozenset({"tee_using", "no_firmware", "tee_probe_failed", "panic"})


def xen_lines(events: Sequence[Event]) -> tuple[str, ...]:
    """Xen's FF-A lines in the last boot of ``events``."""
    lines, in_init = [], False
    for event in last_boot(events):
        if isinstance(event, XenMessage) and event.key in SHOWN_KEYS:
            lines.append(XEN_PREFIX + message(event.key).render(**event.fields))
            in_init = event.key == "mediator_version" or (in_init and event.key not in _INIT_ENDS)
        elif (
            isinstance(event, ConsoleLine)
            and event.stage is Stage.XEN
            and (in_init or _ABOUT_FFA.search(event.text))
        ):
            lines.append(XEN_PREFIX + normalise(event.text))
    return tuple(lines)


def behaviour(events: Sequence[Event], transcript: ProbeTranscript, plan: ProbePlan) -> Behaviour:
    """The side a boot shows: its Xen FF-A lines and the judged probe transcript."""
    return Behaviour(xen_lines(events), tuple(format_transcript(transcript, plan, judged=True)))
