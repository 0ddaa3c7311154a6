"""The fast triage scan (hil.triage.scan: literal and regex searches over blocks, cached line
facts, replayed boots, parts on several cores) against the plainest possible reading of the same
log: every line, one after the other, through hil.xen.log.parse_line. Generated logs mix boots,
cut lines, CRLF and lone CRs, stamps valid and not, guests relaying Xen's words, garbage and
glued output; both readings must give the same boots, violations and verdict."""

from __future__ import annotations

import json
import random
import re
import shutil

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import hil.triage
from hil.cli import main
from hil.terminal import plain_text
from hil.triage import compiled, parallel, triage_file
from hil.triage.model import DOM0_CREATE_FAILED, Boot, Triage, boot_json, crash_kind
from hil.triage.scan import XEN_BODIES, Scanner
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
# What is left of a stamp damaged on the way, then FF-A's words; not a debug diagnostic.
DAMAGED_STAMP = re.compile(r"\[[^\n]{0,30}?(?:ffa: |ARM FF-A )")
DIAGNOSTIC = re.compile(r":\d+:d\d+v\d+ ffa: ")


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
                    and (
                        FFA_PRINTK.match(event.text)
                        or (DAMAGED_STAMP.match(event.text) and not DIAGNOSTIC.search(event.text))
                    )
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
    "[    0.1~3520] ",  # one byte damaged on the UART
    "[ 12.5]",
    "[\t1.5] ",  # whitespace in a stamp: a tab reads as such, a CR or LF ends what Xen's line is
    "[\r1.5] ",
    "[\n 1.5] ",
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


@pytest.fixture(params=["compiled", "pure"])
def finder(request, monkeypatch):
    """Each test below runs with the compiled line finder and with the regex it stands in for;
    where a C compiler exists the compiled one must load (CI cannot silently fall back)."""
    if request.param == "pure":
        monkeypatch.setenv("HIL_TRIAGE_PURE", "1")
    else:
        monkeypatch.delenv("HIL_TRIAGE_PURE", raising=False)
    compiled.reset()
    if request.param == "compiled" and shutil.which("cc"):
        assert compiled.library() is not None, compiled.describe()
    yield request.param
    compiled.reset()


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=_log())
# Text after Xen's stamp that reads as a stamp itself (here a vCPU's name) stays text: read
# plainly, and whole (TF-A's banner in it).
@example(data=b"(XEN) [    0.133520] [1.5] Cannot retrieve the FFA version\n")
@example(data=b"(XEN) [    0.1] [1.5] Cannot retrieve the FFA version\rBooting Trusted Firmware\n")
def test_the_scan_reads_a_log_as_line_by_line_parsing_does(finder, data):
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


def test_repeated_boots_read_as_line_by_line(finder, tmp_path, monkeypatch, capsys):
    """Boots that repeat (so the scan replays them from its caches), read across small blocks
    (the compiled finder called a few finds at a time) and in parts on two processes, and as
    ``hil triage --json`` writes them."""
    monkeypatch.setattr(compiled, "CAP", 3)
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


def _rendered(data: bytes) -> tuple[list[str], Triage, int]:
    """``hil triage --json``'s boots as one process writes them: the scan renders the boots that
    read as earlier ones itself (Scanner._replay_boots); how many it rendered so."""
    out: list[str] = []
    replayed: list[int] = []

    def rendered(text: str, boots: int) -> None:
        out.append(text)
        replayed.append(boots)

    result = Triage("log", lambda boot: out.append(boot_json(boot)), rendered)
    parallel.triage_single(data, result)
    result.finish()
    return out, result, sum(replayed)


_BANNERS = [f"NOTICE:  {TFA_BANNER}"] * 8 + [TFA_BANNER, f"junk{TFA_BANNER}", f"x\r{TFA_BANNER}"]
# A boot as a soak repeats it: its banner, then lines; a Xen line's stamp is drawn anew each time.
# Mostly Xen's plain FF-A lines, which boots repeat (Xen stopping or a second banner ends what
# is replayed); now and then anything else the logs above hold.
_STOPS = ("Xen version", "Panic", "Xen BUG", "Assertion", "Error creating", "(XEN) Xen BUG")
_FFA_TEXTS = [text for text in _XEN_TEXTS if not text.startswith(_STOPS) and "rc =" not in text]
_boot_line = st.one_of(
    *[st.tuples(st.just("(XEN) "), st.sampled_from(_FFA_TEXTS))] * 12,
    st.tuples(st.sampled_from(_PREFIXES), st.sampled_from(_XEN_TEXTS)),
    st.sampled_from(_OTHER).map(lambda line: (None, line)),
)
_boot = st.tuples(st.sampled_from(_BANNERS), st.lists(_boot_line, min_size=3, max_size=8))
# Stamps Xen prints, each line its own (a tab in one: its text is read whole), now and then not.
_XEN_STAMPS = [*_STAMPS[:5], "[\t1.5] "]
_soak_stamp = st.one_of(*[st.sampled_from(_XEN_STAMPS)] * 4, st.sampled_from(_STAMPS))


@st.composite
def _soak(draw: st.DrawFn) -> bytes:
    boots = draw(st.lists(_boot, min_size=1, max_size=4))
    out = []
    for index in draw(st.lists(st.integers(0, len(boots) - 1), min_size=2, max_size=16)):
        banner, lines = boots[index]
        out.append(banner + "\n")
        for prefix, text in lines:
            stamp = draw(_soak_stamp) if prefix is not None else ""
            out.append(f"{prefix or ''}{stamp}{text}\n")
    return "".join(out).encode("utf-8", "surrogateescape")


@settings(
    max_examples=150,  # ~1 s of CPU per finder: longer logs than the test above
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=_soak())
def test_boots_rendered_from_earlier_boots_read_as_line_by_line(finder, data):
    """Boots that repeat, each time with other stamps: the scan renders most of them from the
    first one's record (its fields, its violations' kinds and their lines' places) without
    reading them, and writes the same JSON, counts and verdict as reading every line."""
    boots, result, _ = _rendered(data)
    expected, reference_result = reference(data)
    assert ", ".join(boots) == ", ".join(expected)
    assert _summary([], result) == _summary([], reference_result)
    assert (result.boots, result.ffa_boots, result.ffa_up_boots, result.xen_boots) == (
        reference_result.boots,
        reference_result.ffa_boots,
        reference_result.ffa_up_boots,
        reference_result.xen_boots,
    )
    assert result.unreadable_boots == reference_result.unreadable_boots


def test_a_soak_is_mostly_rendered_from_earlier_boots(finder):
    """The bench's short boots (bench.triage_bench): nearly every boot is rendered from an
    earlier one's record, with the JSON line-by-line reading gives."""
    from bench.triage_bench import short_boot

    rng = random.Random(5)
    variants = [b"".join(short_boot(rng)) for _ in range(6)]
    data = b"".join(rng.choice(variants) for _ in range(300))
    boots, _, replayed = _rendered(data)
    assert ", ".join(boots) == ", ".join(reference(data)[0])
    assert replayed > 280


def test_a_run_of_lines_is_replayed_only_into_a_fresh_boot(finder):
    """What Xen's lines do to a boot can depend on what it holds: "ARM FF-A No firmware
    support" is the violation (no_firmware) only when no line before said why. A boot holding
    an unreadable FF-A line, then such a run: the run's effect is not taken from, or given to,
    a fresh boot's."""
    run = f"(XEN) {message('no_firmware').render()}\n(XEN) ARM FF-A Mediator version 1.2\n"
    held = f"NOTICE:  {TFA_BANNER}\n(XEN) ffa: garbage\njunk {TFA_BANNER}\n{run}"
    fresh = f"NOTICE:  {TFA_BANNER}\n{run}"
    for log in (held + fresh, fresh + held, fresh + held + fresh + held):
        data = log.encode()
        assert _summary(*_scanned(data)) == _summary(*reference(data))
        boots, result, _ = _rendered(data)
        assert _summary(boots, result) == _summary(*reference(data))


def test_a_replayed_run_holds_only_what_its_own_lines_said(finder):
    """A run of Xen's lines is recorded with the boot it went into, and that boot goes on (here
    past a guest's line): an SP it drops later is not replayed into the next boot with the run."""
    run = "(XEN) ARM FF-A Mediator version 1.2\n(XEN) ARM FF-A Firmware version 1.2\n"
    after = f"(d1) {TFA_BANNER}\n"  # read on its own: the run ends before it
    dropped = "(XEN) ffa: Secure partition with id 0x0010 cannot be used\n"
    up = "(XEN) Using TEE mediator for FF-A\n"
    banner = f"NOTICE:  {TFA_BANNER}\n"
    data = (banner + run + after + dropped + up + (banner + run + after + up) * 3).encode()
    expected = _summary(*reference(data))
    assert [json.loads(boot)["dropped_sp_ids"] for boot in expected[0]] == [[16], [], [], []]
    assert _summary(*_scanned(data)) == expected
    assert _summary(*_rendered(data)[:2]) == expected


# What XEN_BODIES looks at: its prefix, stamps whole and broken, every head, the whitespace its
# "\s" means (newline included), and what sits next to them; often in the order it reads them.
_STAMP_PIECES = [
    "",
    "[    0.133520] ",
    "[1.5] ",
    "[\n 1.5] ",
    "[ 1.5]",
    "[1.] ",
    "[.5] ",
    "[ \t12.5] ",
    "[2026-11-24 10:00:09] ",
    "[2026-11-24 10:00:09.514] ",
    "[2026-11-24 10:00:09.51] ",
    "[2026-11-24 10:00:0] ",
    "[2026-11-24 10:00:09.51a] ",
    "[\x0b\x0c\r1.5] ",
    "[00000000031c4a07] ",
    "[00000000031C4A07] ",
    "[0000000003c4a07] ",
    "[00000000031c4a07g] ",
    "[bogus] ",
    "[    0.1~3520] ",  # one byte damaged on the UART
    "[",
    "[ ",
]
_HEAD_PIECES = [
    "ffa: ",
    "ffa:",
    "ARM FF-A ",
    "ARM FF-A",
    "Using TEE mediator ",
    "TEE Mediator ",
    "TEE mediator ",
    "TEE  mediator ",
    "Xen version ",
    "Panic on CPU ",
    "Xen BUG at ",
    "Assertion '",
    "Error creating ",
    "d0v0 ffa: ",
    "d0v0 Cannot retrieve ",
    "d0v0  ffa: ",
    "(d0v0) Cannot retrieve x",
    " ffa: ",
    "Cannot retrieve ",
    "d0v0\tffa: ",
    "d0\x0cv0 ffa: ",
    "d0\rv0 ffa: ",
    "",
]
_PIECES = [
    *_STAMP_PIECES,
    *_HEAD_PIECES,
    "(XEN) ",
    "(XEN)",
    "(X",
    "]",
    "] ",
    " ",
    "\t",
    "\n",
    "\n",
    "\r",
    "Boot",
    "ing",
    "Booting",
    "Booting\n",
    "\x0b",
    "\x0c",
    "0",
    "7",
    ".",
    "-",
    ":",
    "F",
    "g",
    "\x00",
    "\xff",
    "\u00e9",
]
_piece = st.one_of(
    st.sampled_from(_PIECES),
    st.sampled_from(["Booting\n", "Booting", "(XEN) ffa: x\n"]),  # several banners and finds
    st.tuples(
        st.sampled_from(["(XEN) ", "(XEN) ", "(XEN)\t", "(XEN)_", "(XEN "]),
        st.sampled_from(_STAMP_PIECES),
        st.sampled_from(_HEAD_PIECES),
    ).map("".join),
)


@settings(max_examples=800, deadline=None)
@given(st.lists(_piece, max_size=30), st.sampled_from([1, 1, 2, 4096]), st.booleans(), st.data())
def test_the_compiled_finder_finds_what_the_regex_finds(pieces, cap, first_own, data):
    """The compiled finder stands in for ``XEN_BODIES.finditer`` and ``bytes.find`` of TF-A's
    banner (and counts newlines): the same finds, spans and group starts, told apart the same way
    (a whole line of its own or not), on any text made of what the pattern looks at."""
    lib = compiled.library()
    if lib is None:
        pytest.skip(compiled.describe())  # the finder's own test; the fixture above fails CI
    block = "".join(pieces).encode("utf-8", "surrogateescape")
    whole = len(block) - data.draw(st.sampled_from([0, 1]))  # a line cut short, or the log's end
    # The longest line of its own: often just as long as a find (the limit is inclusive).
    lengths = [m.end() - m.start() for m in XEN_BODIES.finditer(block)]
    max_line = data.draw(st.sampled_from([*lengths, *(n - 1 for n in lengths), 1 << 16]))
    # TF-A's, shortened so that pieces make it often; the finder looks for a capital after the
    # first byte first (here the second's B), else for the first byte.
    banner = data.draw(st.sampled_from([b"Booting", b"ing Boot"]))
    default, compiled.CAP = compiled.CAP, cap  # a few finds per call: it goes on where it was
    try:
        got = compiled.lines(lib, block, banner, first_own, max_line, whole)
    finally:
        compiled.CAP = default
    own, others, banners, keys = [], [], [], b""
    for match in XEN_BODIES.finditer(block):
        hit, end = match.span()
        before = block.count(b"\n", 0, hit)
        if (block[hit - 1] == 10 if hit else first_own) and end - hit <= max_line and end <= whole:
            keys += match[1] + b"\n"
            own += (hit, match.start(1), end, before, len(keys))
        else:
            others += (hit, before)
    hit = block.find(banner)
    while hit >= 0:
        # Its line, when Scanner._general would read it whole.
        start = block.rfind(b"\n", 0, hit) + 1
        end = block.find(b"\n", hit) % (len(block) + 1)
        whole = end - start <= max_line and (start or first_own)
        bounds = (start, end) if whole else (-1, -1)
        owns = sum(1 for start in own[0::5] if start < hit)  # own lines before it
        banners += (hit, block.count(b"\n", 0, hit), *bounds, owns)
        hit = block.find(banner, hit + 1)
    assert [list(found) for found in got[:3]] == [own, others, banners]
    assert got[3:] == (block.count(b"\n"), keys)


@pytest.mark.parametrize("compiler", ["no-such-cc", "false"])
def test_without_a_working_compiler_triage_reads_the_same(tmp_path, monkeypatch, capsys, compiler):
    """No C compiler, or one that fails: the regex finds the lines, with the same output, and
    ``hil triage --verbose`` says so."""
    rng = random.Random(3)
    log = tmp_path / "soak.log"
    log.write_bytes(b"".join(_random_log(rng) for _ in range(200)))
    monkeypatch.setattr(hil.triage, "PASTE_MAX", 0)
    monkeypatch.delenv("HIL_TRIAGE_PURE", raising=False)
    compiled.reset()
    main(["triage", "--json", str(log)])
    with_default = capsys.readouterr().out
    # This log also has a boot holding an unreadable FF-A line before Xen's first run of lines
    # (a run once recorded with it crashed the scan).
    expected = reference(log.read_bytes())[0]
    assert json.loads(with_default)["boots"] == [json.loads(b) for b in expected]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing built there yet
    monkeypatch.setenv("CC", compiler)
    compiled.reset()
    try:
        main(["triage", "--json", "--verbose", str(log)])
        assert compiled.library() is None
    finally:
        compiled.reset()
    out, err = capsys.readouterr()
    assert out == with_default
    assert "pure Python" in err and compiler in err
