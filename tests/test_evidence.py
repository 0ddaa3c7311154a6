"""hil.evidence on captures written by hand: which bytes a check judges, and when it refuses to."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.evidence import (
    CaptureParse,
    EvidenceIncomplete,
    Window,
    dom0_end,
    observe,
    read_boot,
)
from hil.guest import LINUX
from hil.guest import PROBE as PROBE_GUEST
from hil.probe import PREFIX
from hil.xen.log import Event, parse_bytes, parse_stream

BANNER = b"NOTICE:  Booting Trusted Firmware\r\n"
XEN = b"(XEN) Xen version 4.22.0 (hil@virtual) (gcc) debug=n Wed Jul 29 2026\r\n"
UNUSABLE = b"(XEN) ffa: Secure partition with id 0x0011 cannot be used\r\n"
PROBE = (
    f"{PREFIX} begin versions=0 queries=0 el=1\r\n"
    f"{PREFIX} rxtx_map w0=0x84000061 w2=0x00000000\r\n{PREFIX} end\r\n"
).encode()
BOOT = BANNER + XEN + UNUSABLE + PROBE


def judged(tmp_path: Path, data: bytes, start: int = 0) -> list[str]:
    """Xen's FF-A lines a check would judge in ``data`` (the normal console's capture)."""
    raw = tmp_path / "ns.raw"
    raw.write_bytes(data)
    return list(observe(read_boot(raw, "ns", start), "ns").xen_lines)


def test_a_transcript_on_another_console_is_no_evidence() -> None:
    fake = parse_bytes(BANNER + XEN + PROBE, "secure")
    real = parse_bytes(BOOT, "ns")
    # The secure console's boot comes last: it must neither start the judged boot nor count.
    seen = observe([*real, *fake], "ns")
    assert seen.xen_lines == ["ffa: Secure partition with id 0x0011 cannot be used"]
    with pytest.raises(EvidenceIncomplete, match="incomplete: no HILPROBE begin line"):
        observe(real, "secure")


def test_only_the_attempts_own_bytes_and_its_last_boot_are_judged(tmp_path: Path) -> None:
    earlier = BANNER + XEN + UNUSABLE * 3  # an attempt that stalled before its probe
    assert judged(tmp_path, earlier + BOOT, start=len(earlier)) == [UNUSABLE[6:-2].decode()]
    # A spontaneous reboot in the middle of Xen's line: the new boot starts at its banner.
    cut = BANNER + XEN + UNUSABLE[:30] + BOOT
    assert judged(tmp_path, cut) == [UNUSABLE[6:-2].decode()]


def test_two_xen_boots_without_a_tf_a_banner_between_them_are_not_judged(tmp_path: Path) -> None:
    # A byte of the second banner was lost on the wire: what is left is readable, and no banner.
    lost = BANNER + XEN + UNUSABLE + b"NOTICE:  Bootin Trusted Firmware\r\n" + BOOT[len(BANNER) :]
    with pytest.raises(EvidenceIncomplete, match="2 Xen boots without a TF-A banner"):
        judged(tmp_path, lost)


@pytest.mark.parametrize(
    "line",
    [
        b"\xff\x00noise" + UNUSABLE,  # noise glued in front of a whole line
        b"(d1) guest \xff\xfe output\r\n",  # a guest's own bytes
        b"[    1.000000] \x1b[0;32mOK\x1b[0m caf\xc3\xa9\r\n",  # colours and UTF-8 from dom0
    ],
)
def test_noise_that_cannot_be_evidence_is_judged_around(tmp_path: Path, line: bytes) -> None:
    assert judged(tmp_path, BANNER + XEN + line + UNUSABLE + PROBE)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"(XEN) ffa: Secure partition with \xffd 0x0011 cannot be used\r\n", "damaged Xen line"),
        (b"(X\xffN) ffa: Secure partition with id 0x0011 cannot be used\r\n", "unreadable line"),
        (b"(XEN) ffa: Secure partition with id 0x00\x0011 cannot be used\r\n", "damaged Xen"),
        (f"{PREFIX} version req=0x0001000\x00 w0=0x1\r\n".encode(), "damaged probe line"),
    ],
)
def test_a_damaged_line_that_can_be_evidence_is_never_judged(
    tmp_path: Path, line: bytes, why: str
) -> None:
    with pytest.raises(EvidenceIncomplete, match=why):
        judged(tmp_path, BANNER + XEN + line + PROBE)


def test_damage_before_xen_starts_is_not_evidence(tmp_path: Path) -> None:
    assert judged(tmp_path, BANNER + b"NOTICE:  BL31: \xff\x00\r\n" + XEN + UNUSABLE + PROBE)


def test_damage_is_reported_with_its_line_in_the_whole_capture(tmp_path: Path) -> None:
    earlier = BANNER + b"x\r\n" * 10
    damaged = b"(XEN) ffa: Secure partition with \xffd 0x0011 cannot be used\r\n"
    with pytest.raises(EvidenceIncomplete, match="ns line 14: damaged Xen line"):
        judged(tmp_path, earlier + BANNER + XEN + damaged + PROBE, start=len(earlier))


def test_a_missing_capture_is_no_evidence(tmp_path: Path) -> None:
    with pytest.raises(EvidenceIncomplete, match=r"cannot read the capture ns\.raw"):
        read_boot(tmp_path / "ns.raw", "ns", 0)


@pytest.mark.parametrize(
    "saved", ['{"console": "../../etc/passwd", "start": 0, "end": null}', "[]", "{", ""]
)
def test_a_saved_window_that_is_not_one_is_refused(tmp_path: Path, saved: str) -> None:
    (tmp_path / "evidence.json").write_text(saved)
    with pytest.raises(EvidenceIncomplete, match="not a judged boot's window"):
        Window.load(tmp_path / "evidence.json")


# Pieces of a capture: whole lines and the kinds of damage a UART does to them.
_PIECES = [
    BANNER,
    XEN,
    UNUSABLE,
    *PROBE.splitlines(keepends=True),
    b"(XEN) Panic on CPU 0:\r\n",
    b"(d0) " + PREFIX.encode() + b" end\r\n",  # a relayed probe line: not dom0's end
    b"HILLINUX end count=2\r\n",
    b"[    1.0] dom0 says hi\r\n",
    b"noise\xff\x00",
    b"\r",
    b"\n",
    b"(XE",  # a line cut short: the rest is glued onto the next one
    UNUSABLE[:30],
]


def _judged_or_refused(judge: object) -> object:
    try:
        return judge()  # type: ignore[operator]
    except EvidenceIncomplete as exc:
        return str(exc)


@settings(max_examples=150, deadline=None)
@given(
    attempts=st.lists(st.lists(st.sampled_from(_PIECES), max_size=14), min_size=1, max_size=3),
    after=st.lists(st.sampled_from(_PIECES), max_size=3),
    guest=st.sampled_from([PROBE_GUEST, LINUX]),
)
def test_each_attempt_is_judged_from_the_one_parse_as_from_its_own_bytes(
    tmp_path_factory: pytest.TempPathFactory,
    attempts: list[list[bytes]],
    after: list[bytes],
    guest: str,
) -> None:
    """A case parses its normal console's capture once (hil.evidence.CaptureParse): every
    attempt's window and events are the ones its own bytes give (dom0_end, Window.read), or it
    is refused with the same reason, and events.json gets the events of the whole capture."""
    raw = tmp_path_factory.mktemp("case") / "ns.raw"
    data = b"".join(b"".join(a) for a in attempts) + b"".join(after)
    raw.write_bytes(data)
    shared = CaptureParse(raw, "ns")
    start = 0
    for attempt in attempts:
        end = start + len(b"".join(attempt))

        def own(start: int = start, end: int = end) -> tuple[Window, list[Event]]:
            window = Window("ns", start, dom0_end(raw, "ns", start, end, guest) or end)
            return window, window.read(raw.parent)

        expected = _judged_or_refused(own)
        got = _judged_or_refused(lambda s=start, e=end: shared.boot(s, e, guest))
        # None: the attempt starts inside a line, and the check parses it by itself.
        assert got is None or got == expected
        start = end
    with raw.open("rb") as stream:
        assert shared.rest() == list(parse_stream(stream, "ns"))
