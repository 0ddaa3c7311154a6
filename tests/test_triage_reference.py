"""The fast triage scan (hil.triage.scan: literal and regex searches over blocks, cached line
facts, replayed boots, parts on several cores) against the plainest possible reading of the same
log: every line, one after the other, through hil.xen.log.parse_line. Generated logs mix boots,
cut lines, CRLF and lone CRs, stamps valid and not, guests relaying Xen's words, garbage and
glued output; both readings must give the same boots, violations and verdict."""

from __future__ import annotations

import json
import random
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hil.triage
from hil.cli import main
from hil.terminal import plain_text
from hil.triage import parallel, triage_file
from hil.triage.model import DOM0_CREATE_FAILED, Boot, Triage, boot_json, crash_kind
from hil.triage.scan import Scanner
from hil.xen.log import (
    ConsoleLine,
    MessageKey,
    Stage,
    XenMessage,
    parse_capture_line,
    parse_line,
    xen_prefix,
)
from hil.xen.messages import message

TFA_BANNER = "Booting Trusted Firmware"
FFA_PRINTK = re.compile(r"(?:d\d+(?:v\d+)?: )?ffa: |ARM FF-A ")


def _text(part: bytes) -> str:
    text = plain_text(part)
    capture = parse_capture_line(text) if text[:1].isdigit() else None
    return capture.text if capture is not None else text


def reference(data: bytes) -> tuple[list[str], Triage]:
    """Each line read whole, in order; each CR-separated part of it as what a terminal showed."""
    boots: list[Boot] = []
    result = Triage("log", boots.append)
    lines = data.split(b"\n")
    for index, raw in enumerate(lines):
        number = index + 1
        for part in raw.rstrip(b"\r").split(b"\r"):
            if not part:
                continue
            event = parse_line(plain_text(part), number, "console")
            if isinstance(event, XenMessage) and event.key is MessageKey.PANIC:
                reason = lines[index + 1] if index + 1 < len(lines) else b""
                body = None
                if reason:
                    text = _text(reason.rstrip(b"\r").split(b"\r")[0])
                    prefix = xen_prefix(text)
                    if prefix is not None and prefix.domain is None and not prefix.start:
                        body = text[prefix.end :]
                if body is not None:
                    result.crash(crash_kind(body), number + 1, _text(reason.split(b"\r")[0]))
                else:
                    result.crash(crash_kind(""), number, _text(part))
            elif isinstance(event, XenMessage):
                if event.key is MessageKey.DOM0_CREATE_FAILED:
                    result.crash(DOM0_CREATE_FAILED, number, _text(part))
                result.message(event.key, event.fields, number, lambda p=part: _text(p))
            elif isinstance(event, ConsoleLine):
                if event.stage is Stage.TFA and event.text.startswith(TFA_BANNER):
                    result.banner(number)
                elif event.stage is Stage.XEN and event.text.startswith(
                    ("Xen BUG at ", "Assertion '")
                ):
                    result.crash(crash_kind(event.text), number, _text(part))
                elif (
                    event.stage is Stage.XEN
                    and event.domain is None
                    and FFA_PRINTK.match(event.text)
                ):
                    result.unreadable(number, _text(part))  # Xen's FF-A words, no message
    result.finish()
    return [boot_json(b) for b in boots], result


def _summary(boots: list[str], result: Triage) -> tuple[list[str], str, int, int]:
    return boots, result.verdict.value, result.banners, result.violations


def _scanned(data: bytes) -> tuple[list[str], Triage]:
    boots: list[Boot] = []
    result = Triage("log", boots.append)
    Scanner(result).scan(data, 0, len(data))
    result.finish()
    return [boot_json(b) for b in boots], result


_VALUES = {"d": -5, "u": 3, "04x": 0x0010, "#x": 0x10002, "s": "FF-A", "ver": "1.1", "rest": "x"}
_XEN_TEXTS = [
    message("xen_version").render(version="4.21.2", rest="(ci@lab) (gcc) debug=n"),
    message("xen_version").render(version="4.22.0", rest="(ci@lab) (gcc) debug=n"),
    message("mediator_version").render(version="1.1"),
    message("mediator_version").render(version="1.2"),
    message("firmware_version").render(version="1.2"),
    message("id_convention").render(),
    message("sp_unusable").render(id=0x0010),
    message("sp_unusable").render(id=0x7FFE),
    message("tee_using").render(name="FF-A"),
    message("tee_using").render(name="OP-TEE"),
    message("cache_failed").render(),
    message("no_firmware").render(),
    message("abi_unsupported").render(abi="FFA_RUN"),
    message("version_failed_vcpu").render(vcpu="d0v0"),
    "Cannot retrieve the FFA version",
    message("vm_created_failed").render(vm_id=1, sp_id=32769, res=-5),
    message("dom0_create_failed").render(rc=-5),
    "Panic on CPU 0:",
    "ffa: Firmware is ",  # a message cut (a mail wrap) or damaged: no message, FF-A's words
    "ffa: Secure partition with id 0x00\ufffd1 cannot be used",
    "ARM FF-A Mediator",
    "d0v1: ffa: something new",
    "arch/arm/tee/ffa.c:120:d0v0 ffa: a debug diagnostic",
    "Xen BUG at ffa.c:12",
    "Xen BUG at %s.c:%d 100%",  # a "%" in what --json writes
    message("xen_version").render(version="4.22%d", rest="(%s) x"),
    "Assertion 'x' failed at ffa.c:3",
    "Error creating domain 0 (rc = -12)",
    "GICv3: CPU0: redistributor region 0",
    "****************************************",
    "",
]
_STAMPS = [
    "",
    "[    0.133520] ",
    "[2026-11-24 10:00:09.514] ",
    "[00000000031c4a07] ",
    "[1.5] ",
    "[bogus] ",
    "[ 12.5]",
]
_PREFIXES = ["(XEN) ", "(XEN) ", "(XEN) ", "(d1) ", "(XEN) DOM1: ", "noise(XEN) ", "(XEN)", ""]
_OTHER = [
    f"NOTICE:  {TFA_BANNER}",
    TFA_BANNER,
    f"junk{TFA_BANNER}",
    f"(d1) {TFA_BANNER}",
    f"(XEN) ffa: Failed to cache SP list NOTICE:  {TFA_BANNER}",  # a banner in Xen's line
    f"(XEN) [    0.1] Xen version 4.22.0 (a) {TFA_BANNER}",
    "2026-11-24T10:00:09.514Z ns | (XEN) ffa: Failed to cache SP list",
    "[    3.000000] Kernel panic - not syncing: Error creating domain 0 (rc = -5)",
    "\x1b[1;32mbuildroot login:\x1b[0m ",
    "SPMC: partition 0x8001 ctx 1",
    "\x00\x00\xff\xfe garbage \x07",
    "",
]
_xen_line = st.builds(
    lambda prefix, stamp, text: f"{prefix}{stamp}{text}",
    st.sampled_from(_PREFIXES),
    st.sampled_from(_STAMPS),
    st.sampled_from(_XEN_TEXTS),
)
_line = st.one_of(_xen_line, _xen_line, st.sampled_from(_OTHER))
# A line as it reaches a log: whole, cut short, with a CR before its LF, or overwritten (a CR in
# the middle, the line's end glued to the next).
_ending = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r", ""])


@st.composite
def _log(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.tuples(_line, _ending, st.integers(0, 90)), max_size=60))
    out = []
    for text, ending, cut in lines:
        if cut < 10:
            text = text[: cut * 7]
        out.append(text + ending)
    return "".join(out).encode("utf-8", "surrogateescape")


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_log())
def test_the_scan_reads_a_log_as_line_by_line_parsing_does(data):
    assert _summary(*_scanned(data)) == _summary(*reference(data))


def _random_log(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randrange(5, 40)):
        if rng.random() < 0.6:
            text = rng.choice(_PREFIXES) + rng.choice(_STAMPS) + rng.choice(_XEN_TEXTS)
        else:
            text = rng.choice(_OTHER)
        if rng.random() < 0.05:
            text = text[: rng.randrange(len(text) + 1)]
        lines.append(text + rng.choice(["\n", "\n", "\n", "\r\n", "\r", ""]))
    return "".join(lines).encode("utf-8", "surrogateescape")


def test_repeated_boots_read_as_line_by_line(tmp_path, monkeypatch, capsys):
    """Boots that repeat (so the scan replays them from its caches), read across small blocks
    and in parts on two processes, and as ``hil triage --json`` writes them."""
    rng = random.Random(14)
    variants = [_random_log(rng) for _ in range(12)]
    soak = b"".join(rng.choice(variants) for _ in range(400))
    expected = reference(soak)
    monkeypatch.setattr(hil.triage, "PASTE_MAX", 0)
    monkeypatch.setattr(hil.triage.scan, "BLOCK", 4096)
    monkeypatch.setattr(hil.triage.scan, "BLOCK_MAX", 8192)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "PART_SIZE", 20_000)
    path = tmp_path / "soak.log"
    path.write_bytes(soak)
    for workers in (1, 2):
        boots: list[Boot] = []
        result = triage_file(path, "log", boots.append, workers=workers)
        assert _summary([boot_json(b) for b in boots], result) == _summary(*expected)
    codes = {"violation": 1, "no_evidence": 3, "clean": 0}
    assert main(["triage", "--json", str(path)]) == codes[expected[1].verdict.value]
    printed = json.loads(capsys.readouterr().out)
    assert printed["boots"] == [json.loads(b) for b in expected[0]]
    assert printed["verdict"] == expected[1].verdict.value
