"""The capture's compiled passes over each read (hil/console/_capscan.c) against the pure-Python
ones they stand in for, alone and inside a console's capture."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.console import Console, ConsolePanic, capscan, record_text
from hil.console.capscan import Needles, Scanner

# Pieces of console output: plain lines, CRLF and lone CRs, tabs, UTF-8 and invalid bytes, ANSI
# colours, NULs, DEL, long lines (the compiled loops take 16 bytes at a time), empty lines.
PIECES = [
    b"(XEN) [   1.000000] GICv3: CPU1: found redistributor\r\n",
    b"NOTICE:  BL31: v2.13.0(release)\n",
    b"\r\n",
    b"\n",
    b"progress 10%\rprogress 20%\r",
    b"\tindented\tby tabs\n",
    b"caf\xc3\xa9 \xe2\x82\xac\n",
    b"bad \xff\xfe byte\n",
    b"\x1b[1;32mOK\x1b[0m systemd\r\n",
    b"nul \x00 and del \x7f\n",
    b"x" * 300 + b"\n",
    b"Kernel panic - not syncing\n",
    b"Panic reporting is on, SEI and serror\n",
    b"HILPROBE end\r\n",
    b"~ tilde and space ",
]
LITERALS = [b"Panic on CPU", b"Xen BUG at", b"Kernel panic", b"SError", b"HILPROBE end", b"x"]


@pytest.fixture
def compiled() -> Iterator[Scanner]:
    scanner = Scanner()
    if not scanner.compiled:
        pytest.skip(f"needs a C compiler (cc, or $CC): {capscan.describe()}")
    yield scanner


def _stream(rng: random.Random, pieces: int) -> bytes:
    return b"".join(rng.choice(PIECES) for _ in range(pieces))


def test_compiled_passes_give_the_pure_results(compiled: Scanner) -> None:
    pure = Scanner(compiled=False)
    rng = random.Random(7)
    prefix = b"2026-12-02T16:00:00.000000+00:00 uart0 | "
    for _ in range(600):
        data = _stream(rng, rng.randrange(0, 12))
        data = data[rng.randrange(0, 8) :]  # every alignment
        needles = Needles(tuple(rng.sample(LITERALS, rng.randrange(0, len(LITERALS)))))
        for end in (len(data), len(data) - 1, len(data) // 2):
            assert compiled.find_any(data[:end], needles) == pure.find_any(data[:end], needles)
        if b"\n" in data:
            start = data.find(b"\n", rng.randrange(0, len(data))) + 1  # a line start, or 0
            end = data.rfind(b"\n") + 1
            start = min(start, data.find(b"\n") + 1) if start > end else start
            want = b"".join(pure.log_lines(data, start, end, prefix))
            assert b"".join(compiled.log_lines(data, start, end, prefix)) == want, data


def test_a_literal_at_the_very_end_and_more_log_than_one_call_holds(compiled: Scanner) -> None:
    pure = Scanner(compiled=False)
    for size in range(0, 40):
        data = b"y" * size + b"SError"
        needles = Needles((b"Kernel panic", b"SError"))
        assert compiled.find_any(data, needles) == size == pure.find_any(data, needles)
    # Short lines make more .log text than the compiled pass's memory: it goes on in turns.
    data = b"\r\n" * 300_000 + b"a\n" * 1000
    prefix = b"2026-12-02T16:00:00.000000+00:00 a-long-console-name | "
    pieces = compiled.log_lines(data, 0, len(data), prefix)
    assert len(pieces) > 1
    assert b"".join(pieces) == b"".join(pure.log_lines(data, 0, len(data), prefix))


def _capture(tmp_path: Path, name: str, reads: list[bytes]) -> tuple[bytes, list[str], str]:
    """What a console records of ``reads``, each read on its own: .raw, .log without stamps,
    the text in memory."""
    with Console(name, "loop://", tmp_path, panic_patterns=()) as con:
        for read in reads:
            con.write(read)
            assert con.sync(5)
        text = con.text()
    stamp = re.compile(rb"^\S+ \S+ \| ", re.MULTILINE)
    log = (tmp_path / f"{name}.log").read_bytes()
    raw = (tmp_path / f"{name}.raw").read_bytes()
    return raw, stamp.sub(b"", log).decode().splitlines(), text


def test_the_log_is_the_same_compiled_or_pure(
    compiled: Scanner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lines split across reads anywhere (in a CRLF, in a UTF-8 character), reads that are all
    # plain text and reads that are not.
    rng = random.Random(11)
    stream = _stream(rng, 300)
    cuts = sorted(rng.sample(range(1, len(stream)), 120))
    reads = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    with_compiled = _capture(tmp_path, "compiled", reads)
    monkeypatch.setenv("HIL_CAPTURE_PURE", "1")
    capscan.reset()
    try:
        with_pure = _capture(tmp_path, "pure", reads)
    finally:
        capscan.reset()
    assert with_compiled[0] == with_pure[0] == stream
    assert with_compiled[1] == with_pure[1]
    # Each line as a record keeps it: decoded, CRs dropped, control characters escaped.
    lines = stream.split(b"\n")
    want = [record_text(line.decode("utf-8", errors="replace")) for line in lines]
    assert with_pure[1] == want[:-1] + ([want[-1]] if lines[-1] else [])
    assert len(with_pure[1]) >= stream.count(b"\n")
    # ASCII reads are kept as bytes, the others as str: read back, they are the whole text.
    assert with_compiled[2] == with_pure[2] == stream.decode("utf-8", errors="replace")


@pytest.mark.parametrize(
    ("pattern", "reads"),
    [
        ("Kernel panic", [b"(d1) Kernel pa", b"nic - not syncing\n"]),  # across two reads
        (r"Panic on CPU \d", [b"(XEN) Panic on CPU ", b"3:\n"]),  # its line ends later
        (r"Panic on CPU \d", [b"(XEN) Panic on ", b"CPU", b" ", b"4", b"\n"]),
    ],
)
def test_a_panic_split_across_reads_is_still_caught(
    tmp_path: Path, pattern: str, reads: list[bytes]
) -> None:
    # Each read alone holds no whole panic literal, or its literal without the rest its pattern
    # needs: the line in progress is searched again with every read.
    with Console("c", "loop://", tmp_path, panic_patterns=[pattern]) as con:
        for read in reads:
            con.write(read)
            assert con.sync(5)
        with pytest.raises(ConsolePanic):
            con.expect("never printed", timeout=5)


@pytest.mark.parametrize("compiler", ["no-such-cc", "false"])
def test_without_a_working_compiler_the_capture_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiler: str
) -> None:
    # No C compiler, or one that fails: the pure-Python passes record the same, and say why.
    reads = [b"(XEN) \x1b[1mok\x1b[0m\r\n", b"caf\xc3", b"\xa9\nbare"]
    want = _capture(tmp_path / "default", "c", reads)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nothing built there yet
    monkeypatch.setenv("CC", compiler)
    capscan.reset()
    try:
        assert capscan.library() is None
        assert "pure Python" in capscan.describe() and compiler in capscan.describe()
        assert _capture(tmp_path / "fallback", "c", reads) == want
    finally:
        capscan.reset()


def test_a_library_another_compiler_left_in_the_cache_does_not_stop_this_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A firmware shell sets CC to a cross compiler: what it builds cannot be loaded here, and
    # must not stand in the cache where a later hil, with the machine's own cc, looks.
    cross = tmp_path / "aarch64-linux-gnu-gcc"
    cross.write_text('#!/bin/sh\nwhile [ "$1" != -o ]; do shift; done\necho ELF > "$2"\n')
    cross.chmod(0o755)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", str(cross))
    capscan.reset()
    try:
        assert capscan.library() is None
        monkeypatch.delenv("CC")
        capscan.reset()
        assert capscan.library() is not None, capscan.describe()
    finally:
        capscan.reset()
