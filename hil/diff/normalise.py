"""Boot-to-boot noise in Xen's console lines, replaced by placeholders so the same Xen booted twice
reads the same, while everything else in the line is still compared.

Each rule names one kind of noise and replaces only its tokens (never the whole line): a change
beside a timestamp or an address still shows. Catalogue messages (hil.xen.messages) need none of
this: they are rendered from their parsed fields, which carry no noise."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One kind of noise: ``pattern`` matches its tokens, ``placeholder`` replaces each."""

    name: str
    pattern: re.Pattern[str]
    placeholder: str

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.placeholder, text)


_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"

RULES: tuple[Rule, ...] = (
    # console_timestamps stamps inside a line (the parser removes the one after "(XEN) "):
    # "[    1.234567]", "[2026-12-01 10:00:00.123]", "[00000000031c4a07]".
    Rule(
        "timestamp",
        re.compile(
            r"\[(?:\s*\d+\.\d+|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?|[0-9a-fA-F]{16})\] ?"
        ),
        "",
    ),
    # The build date Xen's banner carries ("Tue Dec  1 20:00:00 UTC 2026"): a rebuild changes it.
    Rule(
        "build-date",
        re.compile(rf"\b{_DAY} {_MONTH} [ \d]?\d \d\d:\d\d:\d\d(?: [A-Z]{{2,5}})? \d{{4}}\b"),
        "<date>",
    ),
    # Where dom0's RAM banks land ("BANK[0] 0x00000048000000-0x00000050000000 (128MB)"): Xen's
    # allocator picks them per boot; the bank count and sizes stay compared.
    Rule(
        "dom0-ram",
        re.compile(r"\b0x[0-9a-fA-F]{8,16}-0x[0-9a-fA-F]{8,16}\b"),
        "<ram>",
    ),
    # Addresses and pointers: 0x with 9+ hex digits, or a bare 16-digit word (%p, PRIpaddr).
    # 8 digits and fewer stay: FF-A function ids (0x84000061), IDs and error codes are values.
    Rule(
        "address",
        re.compile(r"\b0x[0-9a-fA-F]{9,16}\b|(?<![0-9a-fA-Fx])[0-9a-fA-F]{16}\b"),
        "<addr>",
    ),
)


def normalise(text: str, rules: tuple[Rule, ...] = RULES) -> str:
    """``text`` with every rule's tokens replaced, and trailing blanks dropped."""
    for rule in rules:
        text = rule.apply(text)
    return text.rstrip()
