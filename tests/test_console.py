from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.console import (
    Console,
    ConsoleGroup,
    ConsoleLost,
    ConsolePanic,
    ConsoleTimeout,
    ReconnectPolicy,
    record_text,
)
from hil.console.finder import Finder
from hil.errors import ExitCode
from hil.xen.log import NORMAL_WORLD_PANICS, SECURE_WORLD_PANICS
from tests.tcp_console import ScriptedConsoleServer, ScriptedRfc2217Server

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 (\S+) \| (.*)$")
FAST = ReconnectPolicy(attempts=3, wait_initial_s=0.01, wait_max_s=0.05)


def _log_lines_and_marks(path: Path) -> list[tuple[str, str]]:
    """(console, rest) of every .log line: "| text" for a record, "! ..." for a gap note."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        _, console, rest = line.split(" ", 2)
        out.append((console, rest))
    return out


def _log_lines(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = LOG_LINE.match(line)
        assert m, line
        out.append((m.group(1), m.group(2)))
    return out


def test_loop_records_raw_and_timestamped_lines(tmp_path: Path) -> None:
    with Console("uart0", "loop://", tmp_path) as con:
        con.write(b"NOTICE:  BL1: v2.12\r\n\x1b[0mcolour\nbad \xff byte\npartial")
        m = con.expect(r"bad (.) byte", timeout=5)
        assert m.group(1) == "\ufffd"
        con.expect("partial", timeout=5)
    assert (tmp_path / "uart0.raw").read_bytes().startswith(b"NOTICE:  BL1: v2.12\r\n")
    assert _log_lines(tmp_path / "uart0.log") == [
        ("uart0", "NOTICE:  BL1: v2.12"),
        ("uart0", "\\x1b[0mcolour"),
        ("uart0", "bad \ufffd byte"),
        ("uart0", "partial"),  # the unterminated last line is written on close
    ]


def test_expect_only_looks_after_the_mark(tmp_path: Path) -> None:
    with Console("c", "loop://", tmp_path) as con:
        con.write("stage A\n")
        con.expect("stage A", 5)
        mark = con.mark()
        with pytest.raises(ConsoleTimeout):
            con.expect("stage A", 0.1, since=mark)
        con.write("stage B\n")
        assert con.expect("stage (.)", 5, since=mark).group(1) == "B"


def test_timeout_is_infra_and_carries_last_lines(tmp_path: Path) -> None:
    with Console("c", "loop://", tmp_path) as con:
        con.write("one\ntwo\nthree\n")
        con.expect("three", 5)
        with pytest.raises(ConsoleTimeout) as err:
            con.expect("Xen version", 0.2)
    assert err.value.exit_code == ExitCode.INFRA
    assert err.value.last_lines == ("one", "two", "three")
    assert "\n" not in str(err.value) and "'three'" in str(err.value)


def test_a_timeout_reads_in_words_and_names_the_console_it_quotes(tmp_path: Path) -> None:
    with ConsoleGroup({"secure": "loop://", "ns": "loop://"}, tmp_path) as group:
        group["secure"].write("NOTICE:  BL31: v2.12\n")
        group.expect("BL31", 5)  # read (and time-stamped) before the next line is written
        group["ns"].write("(XEN) Xen version 4.22\n")
        group.expect("Xen version", 5)
        with pytest.raises(ConsoleTimeout) as literal:
            group.expect(re.escape("(XEN) ffa: Secure partition"), 0.1, console="ns")
        with pytest.raises(ConsoleTimeout) as regex:
            group.expect(r"HILPROBE\s+end", 0.1)
    # The text awaited as written, not Python's repr of an escaped regex; the line quoted says
    # which console it came from.
    assert str(literal.value) == (
        "console 'ns': no \"(XEN) ffa: Secure partition\" within 0.1 s; "
        "last line on ns: '(XEN) Xen version 4.22'"
    )
    assert str(regex.value) == (
        "consoles secure, ns: no /HILPROBE\\s+end/ within 0.1 s; "
        "last line on ns: '(XEN) Xen version 4.22'"
    )


@pytest.mark.parametrize("panic", ["Panic on CPU 0:", "Xen BUG at page_alloc.c:42", "SError"])
def test_panic_ends_a_wait_at_once(tmp_path: Path, panic: str) -> None:
    with Console("c", "loop://", tmp_path) as con:
        threading.Timer(0.1, con.write, args=(f"(XEN) {panic}\n",)).start()
        started = time.monotonic()
        with pytest.raises(ConsolePanic) as err:
            con.expect("never printed", timeout=30)
    assert time.monotonic() - started < 2
    assert panic in str(err.value)
    assert err.value.exit_code == ExitCode.CHECK_FAILED


def test_match_before_a_panic_still_wins(tmp_path: Path) -> None:
    with Console("c", "loop://", tmp_path) as con:
        con.write("READY\nKernel panic - not syncing\n")
        time.sleep(0.1)  # both in the buffer before the wait starts
        assert con.expect("READY", 5).group() == "READY"
        with pytest.raises(ConsolePanic):
            con.expect("after", 5)


SERVERS = pytest.mark.parametrize(
    "server_type", [ScriptedConsoleServer, ScriptedRfc2217Server], ids=["socket", "rfc2217"]
)


@SERVERS
def test_reconnect_loses_no_byte(tmp_path: Path, server_type: type[ScriptedConsoleServer]) -> None:
    # Random bytes: over RFC 2217 every 0xFF is telnet's IAC, escaped by the server (and
    # pyserial's client unescapes byte by byte in Python: less data, or its negotiation of a
    # reconnect waits behind it).
    size = 200_000 if server_type is ScriptedConsoleServer else 20_000
    rng = random.Random(7)
    first, second = rng.randbytes(size), rng.randbytes(size // 2) + b"\nEND OF STREAM\n"
    opened = threading.Event()  # the board drops only a console that finished connecting
    sessions = [[first[:1000], 0.05, first[1000:], opened], [second]]
    with server_type(sessions) as server:
        con = Console("uart", server.url, tmp_path, reconnect=FAST)
        chunks: list[bytes] = []
        con.subscribe(on_chunk=lambda c: chunks.append(c.data))
        with con:
            opened.set()
            con.expect("END OF STREAM", timeout=30)
        assert con.reconnects == 1
    assert (tmp_path / "uart.raw").read_bytes() == first + second
    assert b"".join(chunks) == first + second


def test_unrecoverable_loss_reaches_waiters(tmp_path: Path) -> None:
    server = ScriptedConsoleServer([[b"hello\n"]], hold_last=False).start()
    with Console("uart", server.url, tmp_path, reconnect=FAST) as con:
        con.expect("hello", 5)
        server.stop()  # nothing listens any more
        with pytest.raises(ConsoleLost) as err:
            con.expect("never", timeout=30)
    assert err.value.exit_code == ExitCode.INFRA
    assert "'uart'" in str(err.value) and "3 attempts" in str(err.value)
    assert err.value.last_lines == ("hello",)


@SERVERS
def test_write_reaches_the_far_end(
    tmp_path: Path, server_type: type[ScriptedConsoleServer]
) -> None:
    with server_type([[b"login: "]]) as server:
        with Console("uart", server.url, tmp_path) as con:
            con.expect("login: ", 5)
            con.write(b"root\xff\n")  # 0xFF is telnet's IAC over RFC 2217: sent escaped
            deadline = time.monotonic() + 5
            while bytes(server.received) != b"root\xff\n" and time.monotonic() < deadline:
                time.sleep(0.01)
        assert bytes(server.received) == b"root\xff\n"


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_close_leaks_no_thread_or_fd(tmp_path: Path) -> None:
    with ScriptedConsoleServer([[b"x\n"]]) as server:
        Console("warm", server.url, tmp_path).open().close()  # first-use imports
    threads, fds = threading.active_count(), _fds()
    for i in range(5):
        with ScriptedConsoleServer([[b"x\n"]]) as server:
            group = ConsoleGroup({"s": server.url, "n": "loop://"}, tmp_path / str(i))
            with group:
                group.expect("x", 5)
    assert threading.active_count() <= threads  # other tests' threads may end meanwhile
    assert _fds() <= fds


def test_group_merges_timeline_and_watches_every_console(tmp_path: Path) -> None:
    with ConsoleGroup({"secure": "loop://", "normal": "loop://"}, tmp_path) as group:
        group["secure"].write("NOTICE:  BL31: v2.12\n")
        group.expect("BL31", 5, console="secure")
        group["normal"].write("(XEN) Xen version 4.22\n")
        hit = group.expect("Xen version", 5)
        assert hit.console == "normal"
        mark = group.mark()
        group["secure"].write("SError on CPU1\n")
        with pytest.raises(ConsolePanic, match="'secure'"):
            group.expect("HILPROBE end", 30, since=mark, console="normal")
        timeline = [(r.console, r.text) for r in group.timeline()]
    assert timeline == [
        ("secure", "NOTICE:  BL31: v2.12"),
        ("normal", "(XEN) Xen version 4.22"),
        ("secure", "SError on CPU1"),
    ]
    assert _log_lines(tmp_path / "normal.log") == [("normal", "(XEN) Xen version 4.22")]


@given(st.text())
def test_sanitised_text_is_one_printable_line(text: str) -> None:
    clean = record_text(text)
    assert not any((ord(c) < 0x20 and c != "\t") or 0x7F <= ord(c) <= 0x9F for c in clean)
    printable = "".join(c for c in text if c.isprintable() and c not in "\\\r")
    assert record_text(printable) == printable


def test_concurrent_waiters_each_get_their_line(tmp_path: Path) -> None:
    with Console("c", "loop://", tmp_path) as con:
        mark = con.mark()
        found: dict[int, str] = {}

        def wait(i: int) -> None:
            found[i] = con.expect(rf"line {i} (\w+)", 10, since=mark).group(1)

        waiters = [threading.Thread(target=wait, args=(i,)) for i in range(8)]
        for t in waiters:
            t.start()
        for i in reversed(range(8)):
            con.write(f"line {i} w{i}\n")
        for t in waiters:
            t.join()
    assert found == {i: f"w{i}" for i in range(8)}


def test_line_anchor_at_a_mark_sees_the_text_before_it(tmp_path: Path) -> None:
    with Console("c", "loop://", tmp_path) as con:
        con.write("NOTICE:  BL3")
        con.expect("BL3", 5)
        mark = con.mark()
        con.write("1: v2.12\n")
        with pytest.raises(ConsoleTimeout):
            con.expect(r"^1: ", 0.2, since=mark)  # mid-line: not a line start
        con.write("1: next line\n")
        assert con.expect(r"^1: (.*)$", 5, since=mark).group(1) == "next line"


@contextlib.contextmanager
def _not_listening() -> Iterator[tuple[socket.socket, str]]:
    """A board's port that refuses connections until ``listen()``: bound, so that no other
    process (a parallel test) can take it meanwhile, unlike a port number picked and freed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock, f"socket://127.0.0.1:{sock.getsockname()[1]}"


def test_lazy_open_connects_once_the_board_listens_and_loses_no_byte(tmp_path: Path) -> None:
    payload = random.Random(3).randbytes(50_000) + b"\nBOOTED\n"
    with _not_listening() as (board, url):
        con = Console("uart", url, tmp_path, reconnect=FAST)
        con.open(connect_now=False)
        try:
            time.sleep(0.2)  # connections refused meanwhile: the reader must keep trying
            assert con.lost is None
            board.listen()
            conn, _ = board.accept()  # the reader connects by itself
            with conn:
                conn.sendall(payload)  # sent the moment it connected: a board that waited
                con.expect("BOOTED", timeout=30)
                # Closed while the board is still connected: a drop now would be a reconnect.
                con.close()
        finally:
            con.close()
    assert (tmp_path / "uart.raw").read_bytes() == payload
    assert con.reconnects == 0 and con.gaps() == []


def test_lazy_open_gives_up_after_first_connect_s(tmp_path: Path) -> None:
    policy = ReconnectPolicy(attempts=2, wait_initial_s=0.01, first_connect_s=0.3)
    with _not_listening() as (_, url):
        started = time.monotonic()
        con = Console("uart", url, tmp_path, reconnect=policy).open(connect_now=False)
        try:
            with pytest.raises(ConsoleLost) as err:
                con.expect("never", timeout=30)
        finally:
            con.close()
    assert time.monotonic() - started < 5
    assert f"nothing listening on {url} within 0.3 s" in str(err.value)
    assert "\n" not in str(err.value)


def test_group_open_lazily_reopens_lazily(tmp_path: Path) -> None:
    with _not_listening() as (_, ns), _not_listening() as (_, secure):
        group = ConsoleGroup(
            {"ns": ns, "secure": secure}, tmp_path, reconnect=FAST, connect_now=False
        )
        for _ in range(2):  # a boot retry closes and re-opens the group: still no listener needed
            group.open()
            assert group.lost is None
            group.close()


def test_bytes_already_received_on_another_console_survive_a_panic(tmp_path: Path) -> None:
    # The secure UART printed its banner just before the normal-world one panicked: the case
    # ends at once, and the banner, already in the socket but not yet read, must be captured.
    banner = b"HIL test SPMC v1 core=0\r\n" * 40
    reading, release = threading.Event(), threading.Event()

    def hold_the_reader(_chunk: object) -> None:
        # Keeps the secure reader busy with its first chunk while the banner arrives.
        if not reading.is_set():
            reading.set()
            release.wait(5)

    with (
        socket.create_server(("127.0.0.1", 0)) as ns_server,
        socket.create_server(("127.0.0.1", 0)) as secure_server,
    ):
        urls = {
            "ns": f"socket://127.0.0.1:{ns_server.getsockname()[1]}",
            "secure": f"socket://127.0.0.1:{secure_server.getsockname()[1]}",
        }
        group = ConsoleGroup(urls, tmp_path)
        group["secure"].subscribe(on_chunk=hold_the_reader)
        group.open()
        ns, _ = ns_server.accept()
        secure, _ = secure_server.accept()
        with ns, secure:
            secure.sendall(b"NOTICE:  BL31\r\n")
            assert reading.wait(5)
            secure.sendall(banner)
            ns.sendall(b"(XEN) Panic on CPU 0:\r\n")
            with pytest.raises(ConsolePanic):
                group.expect("HILPROBE end", timeout=5)
            group["secure"].request_stop()
            release.set()
            group.close()
    assert (tmp_path / "secure.raw").read_bytes() == b"NOTICE:  BL31\r\n" + banner


def test_a_drop_mid_line_is_a_gap_and_splices_no_line(tmp_path: Path) -> None:
    sessions = [[b"(XEN) first line\n(XEN) cut in the mid", 0.05], [b"dle? no: new boot\nEND\n"]]
    with ScriptedConsoleServer(sessions) as server:
        group = ConsoleGroup({"uart": server.url}, tmp_path, reconnect=FAST)
        before = datetime.now(UTC)  # before the session starts: the gap is surely after it
        with group:
            group.expect("END", timeout=10)
        assert group.reconnects == {"uart": 1}
    (gap,) = group.gaps()
    assert gap.console == "uart" and gap.resumed is not None and gap.lost <= gap.resumed
    assert gap.raw_offset == len(sessions[0][0])
    assert group["uart"].text()[: gap.text_offset].endswith("cut in the mid")
    assert group.gaps(since=before) == [gap]
    assert group.gaps(since=gap.resumed + timedelta(seconds=1)) == []
    assert (tmp_path / "uart.raw").read_bytes() == sessions[0][0] + sessions[1][0]
    lines = (tmp_path / "uart.log").read_text(encoding="utf-8").splitlines()
    texts = [line.split(" ", 1)[1] for line in lines]
    assert texts[:2] == ["uart | (XEN) first line", "uart | (XEN) cut in the mid"]
    assert texts[2].startswith("uart ! disconnected: ")
    assert texts[3].startswith("uart ! reconnected after ")
    assert texts[4:] == ["uart | dle? no: new boot", "uart | END"]


@SERVERS
def test_a_slow_line_cut_by_a_drop_keeps_every_byte_sent_before_it(
    tmp_path: Path, server_type: type[ScriptedConsoleServer]
) -> None:
    # Issue 10: a slow board's last bytes before a drop went missing over RFC 2217 (ser2net,
    # labgrid): pyserial's read() raised once its reader thread had seen the drop, throwing away
    # what that thread had already queued.
    head, tail = b"(XEN) first line\r\n", b"(XEN) slow output, cut in the mid"
    opened = threading.Event()
    slow = [step for byte in tail for step in (bytes([byte]), 0.001)]
    sessions = [[head, opened, *slow], [b"dle? no: next boot\r\nEND\r\n"]]
    with server_type(sessions) as server:
        con = Console("uart", server.url, tmp_path, reconnect=FAST)

        def busy_reader(_chunk: object) -> None:
            # The reader is busy (a loaded host) while the last bytes and the drop arrive.
            if server.ended(0).wait(10):
                time.sleep(0.3)  # the client library has seen the drop by now

        con.subscribe(on_chunk=busy_reader)
        with con:
            opened.set()
            con.expect("END", timeout=30)
    (gap,) = con.gaps()
    assert gap.raw_offset == len(head + tail) and gap.resumed is not None
    assert (tmp_path / "uart.raw").read_bytes() == head + tail + sessions[1][0]
    texts = [t for _, t in _log_lines_and_marks(tmp_path / "uart.log")]
    assert texts[:2] == ["| (XEN) first line", "| (XEN) slow output, cut in the mid"]
    assert texts[2].startswith("! disconnected: ")


def test_a_drop_that_is_never_healed_is_an_open_gap(tmp_path: Path) -> None:
    server = ScriptedConsoleServer([[b"hello\n"]], hold_last=False).start()
    con = Console("uart", server.url, tmp_path, reconnect=FAST)
    with con:
        con.expect("hello", 5)
        server.stop()
        with pytest.raises(ConsoleLost):
            con.expect("never", timeout=30)
    (gap,) = con.gaps()
    assert gap.resumed is None and gap.raw_offset == len(b"hello\n")
    assert con.gaps(since=datetime.now(UTC)) == [gap]  # still open: anything later is missing


def test_panic_patterns_per_console(tmp_path: Path) -> None:
    patterns = {"secure": [], "normal": [r"^\(XEN\) Panic on CPU"]}
    with ConsoleGroup(
        {"secure": "loop://", "normal": "loop://"}, tmp_path, panic_patterns=patterns
    ) as group:
        group["secure"].write("(XEN) Panic on CPU 0: said the secure world\nSError\n")
        group["normal"].write("(d1) (XEN) Panic on CPU 0: a guest's relayed text\nREADY\n")
        assert group.expect("READY", 5).console == "normal"
        group["normal"].write("(XEN) Panic on CPU 1:\n")
        with pytest.raises(ConsolePanic, match="'normal'"):
            group.expect("never", 5)


def test_panic_patterns_for_an_unknown_console_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown consoles: nromal"):
        ConsoleGroup({"normal": "loop://"}, tmp_path, panic_patterns={"nromal": ["x"]})


FINDER_PATTERNS = [
    r"Panic on CPU",
    r"^\(XEN\) Panic on CPU \d",
    r"(?:Panic on CPU)|(?:Xen BUG at)|(?:SError)",
    r"HILPROBE end",
    r"bad (.) byte$",
    r"(?<=x)SError\b",
    r"[^\n]*SError",  # cannot cross a line: still found through its literal
    r"SError[^x]",  # can match a newline: searched with the regex alone
    r"^(?:Panic on CPU|(?i:xen bug))",  # a group ignoring case has no literal to find
    # The real boards' watches: literals found only as a set, in the alternation at the end.
    "|".join(f"(?:{p})" for p in NORMAL_WORLD_PANICS),
    "|".join(f"(?:{p})" for p in SECURE_WORLD_PANICS),
]
FINDER_PARTS = [
    *("SError", "Panic on CPU 1", "(XEN) ", "\n", "x", "\0", "bad é byte", "Kernel panic"),
    *("(d1) ", "Panic: ", "E/TC:", "PANIC at PC : ", "XEN BUG", " "),
]


@given(
    st.sampled_from(FINDER_PATTERNS),
    st.lists(st.sampled_from(FINDER_PARTS)),
    st.integers(0, 40),
)
def test_the_literal_finder_finds_what_the_regex_finds(pattern: str, parts: list[str], pos: int):
    # Panics and markers are found with str.find first (many times faster than the regex
    # engine's scan); the answer must be the regex's own, for every text and start.
    # ASCII text is searched with the C library's memmem where there is one, other text (and
    # every text where there is none) with str.find: both must give the regex's answer.
    regex = re.compile(pattern, re.MULTILINE)
    text = "".join(parts)
    by_find = Finder(regex)
    by_find._needles = None
    theirs = regex.search(text, pos)
    for finder in (Finder(regex), by_find):
        mine = finder.search(text, pos)
        assert (mine and mine.span()) == (theirs and theirs.span())


def test_memory_does_not_grow_with_what_the_board_sends(tmp_path: Path) -> None:
    # A board that prints without end (a 1 GiB burst) costs a bounded window, not its size;
    # every byte still reaches .raw and every line .log.
    line = b"(XEN) [  12.000000] GICv3: CPU1: found redistributor 1 region 0\r\n"
    block = line * ((1 << 20) // len(line))
    server = ScriptedConsoleServer([[*[block] * 24, b"END\n"]])
    with server, Console("c", server.url, tmp_path) as con:
        con.expect("^END$", timeout=60)
        kept = sum(len(c) for c in con._chunks)
    assert kept <= 4 << 20
    assert (tmp_path / "c.raw").stat().st_size == 24 * len(block) + 4
    with (tmp_path / "c.log").open("rb") as f:
        assert sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) == (
            24 * block.count(b"\n") + 1
        )


def test_a_character_cut_by_a_close_is_not_completed_after_a_reopen(tmp_path: Path) -> None:
    # A boot retry closes and re-opens the consoles: what follows is not the same line.
    con = Console("c", "loop://", tmp_path)
    with con:
        con.write(b"caf\xc3")
        con.expect("caf", 5)
    with con:
        con.write(b"\xa9 is not a cafe\n")
        con.expect("cafe", 5)
    assert [r.text for r in con.records()] == ["caf\ufffd", "\ufffd is not a cafe"]
    assert [t for _, t in _log_lines(tmp_path / "c.log")] == ["caf\ufffd", "\ufffd is not a cafe"]


@given(
    pieces=st.lists(
        st.tuples(st.text(alphabet="ab\n\x1b", max_size=12), st.booleans()), max_size=30
    ),
    tail=st.one_of(st.none(), st.integers(1, 40)),
    n=st.integers(1, 6),
)
def test_the_last_lines_are_the_last_of_all_records(
    pieces: list[tuple[str, bool]], tail: int | None, n: int
) -> None:
    """A close (and every wait that gives up) quotes the last lines: made from the last ones
    alone, they are the same as the last of every line's record, cut windows, lines a drop
    ended and empty lines included."""
    con = Console("c", "loop://", Path("unused"))
    now = datetime.now(UTC)
    with con._cond:
        for text, dropped in pieces:
            start = con._text_len
            con._add_text(text, now)
            con._scan(start, text)
            if dropped:
                con._end_line(now)  # a drop ends the line in progress
        assert con._records(tail, last=n) == con._records(tail)[-n:]


def test_a_prepared_capture_that_cannot_connect_leaves_no_empty_files(tmp_path: Path) -> None:
    """A case's capture prepared ahead (hil.ahead) whose console cannot be opened ends the case
    as an infra error with no capture files of its own: nothing was captured, nothing to read."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"socket://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there
    group = ConsoleGroup({"ns": closed, "secure": "loop://"}, tmp_path).prepare()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ns.log",
        "ns.raw",
        "secure.log",
        "secure.raw",
    ]
    with pytest.raises(ConsoleLost, match="cannot open"):
        group.open()
    assert list(tmp_path.iterdir()) == []
