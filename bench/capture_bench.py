"""Benchmark: console capture against the limit, in one run.

A sender process streams console-like text (Xen and Linux boot lines, CRLF, systemd's colours,
near misses of the panic patterns) as fast as a socket takes it, ending with an end marker.
Measured, each on the same stream in the same run:

- the limit: a plain socket-to-file copy (recv_into a buffer, write it), one thread per stream;
- capture: ``hil.console.Console`` writing ``.raw`` and the timestamped ``.log``, with its line
  records, the panic watch of a board's normal-world console, and a wait for the end marker
  running - what a boot stage does;
- with 4 streams at once, MB/s per console, and capture / limit;
- peak RSS of a process capturing a 1 GiB burst against one capturing 1 MiB.

Every figure is printed with its target; exit 1 when one is missed (or a byte is lost).

    python -m bench.capture_bench [--mib N] [--consoles N] [--burst-mib N] [--plain] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hil.console import Console, ReconnectPolicy, capscan
from hil.xen.log import NORMAL_WORLD_PANICS

MIN_MBPS = 50.0  # per console, with CONSOLES at once
CONSOLES = 4
# A 1 GiB burst may need no more memory than a 1 MiB one, give or take allocator noise.
RSS_SLACK_MIB = 16.0
END = b"HILPROBE end\r\n"
BLOCK = 1 << 20  # the sender repeats one block of this many bytes
# Set (by --plain, for the sender process too): no ANSI colours, the stream as it was until
# 2026-12, which the README's older figures were measured on.
PLAIN_ENV = "HIL_CAPTURE_BENCH_PLAIN"
COPY_BUFFER = 1 << 18


def stream_block(seed: int = 5) -> bytes:
    """BLOCK bytes of whole console lines: TF-A, Xen and dom0 Linux as a board prints them (with
    systemd's ANSI colours), with words the panic watch looks for in lines that are not
    panics."""
    rng = random.Random(seed)
    lines: list[str] = []
    size = 0
    t = 0.0
    while size < BLOCK:
        t += rng.random() / 100
        kind = rng.randrange(8)
        if kind == 0:
            text = f"NOTICE:  BL31: v2.13.0(release):v2.13.0-{rng.randrange(999)}-gabc1234"
        elif kind == 1:
            text = f"(XEN) [{t:12.6f}] GICv3: CPU{rng.randrange(8)}: found redistributor"
        elif kind == 2:
            text = f"(XEN) [{t:12.6f}] ffa: partition 0x{rng.getrandbits(16):04x} is not usable"
        elif kind == 3:
            text = f"[{t:12.6f}] panic_timeout = 0, SEI and serror routing by the RAS unit"
        elif kind == 4:
            text = f"(d1) [{t:12.6f}] kernel: Panic reporting is on, CPU{rng.randrange(8)} up"
        elif kind == 5 and not os.environ.get(PLAIN_ENV):  # systemd in dom0 colours its status
            unit = rng.choice(["systemd-udevd", "networking", "ssh", "getty@tty1"])
            text = f"[\x1b[0;32m  OK  \x1b[0m] Started {unit}.service."
        else:
            words = rng.choices(["mm", "irq", "virtio", "0x" + "f" * 8, "dom0", "vcpu"], k=9)
            text = f"[{t:12.6f}] " + " ".join(words)
        line = text.encode() + b"\r\n"
        lines.append(line.decode())
        size += len(line)
    return "".join(lines).encode()[:BLOCK].rsplit(b"\n", 1)[0] + b"\n"


# -- the sender (its own process, so it does not share the capture's interpreter) ---------------


def serve(count: int, blocks: int) -> None:
    """Listen on ``count`` ports (printed as JSON); each connection gets the block ``blocks``
    times, then END, and is held until the client closes."""
    block = stream_block()
    servers = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    print(json.dumps([s.getsockname()[1] for s in servers]), flush=True)

    def one(server: socket.socket) -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                for _ in range(blocks):
                    conn.sendall(block)
                conn.sendall(END)
                with contextlib.suppress(OSError):
                    while conn.recv(65536):
                        pass

    threads = [threading.Thread(target=one, args=(s,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    sys.stdin.read()  # until the parent goes away


@contextlib.contextmanager
def sender(count: int, blocks: int) -> Iterator[list[int]]:
    argv = [sys.executable, "-m", "bench.capture_bench", "--serve", str(count), str(blocks)]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.kill()
        proc.wait()


def expected(blocks: int) -> tuple[int, int]:
    """(bytes, lines) a reader of ``blocks`` blocks gets."""
    block = stream_block()
    return blocks * len(block) + len(END), blocks * block.count(b"\n") + 1


# -- the two readers ------------------------------------------------------------------------


def plain_copy(port: int, path: Path) -> int:
    """The limit: socket to file, nothing else. Returns the bytes copied."""
    buffer = bytearray(COPY_BUFFER)
    view = memoryview(buffer)
    tail = b""
    copied = 0
    with socket.create_connection(("127.0.0.1", port)) as sock, path.open("wb") as out:
        while True:
            n = sock.recv_into(buffer)
            if not n:
                break
            out.write(view[:n])
            copied += n
            tail = (tail + bytes(view[max(0, n - len(END)) : n]))[-len(END) :]
            if tail == END:
                break
    return copied


def capture(port: int, directory: Path, name: str) -> int:
    """hil's capture until the end marker; returns the bytes in the .raw file."""
    policy = ReconnectPolicy(attempts=1)
    # A board's normal-world console watches these (hil.evidence.panic_patterns), not the
    # generic PANIC_PATTERNS: the patterns whose literals the capture can look for first.
    url = f"socket://127.0.0.1:{port}"
    with Console(name, url, directory, reconnect=policy, panic_patterns=NORMAL_WORLD_PANICS) as con:
        con.expect(END.decode().strip(), timeout=600)
    return (directory / f"{name}.raw").stat().st_size


@dataclass
class Run:
    seconds: float
    sizes: list[int]
    cpu_seconds: float  # this process's (the sender is another)
    system_seconds: float  # the part of it spent in the kernel (receiving, writing files)

    def cpu_per_gb(self) -> float:
        return self.cpu_seconds / (sum(self.sizes) / 1e9)

    def system_per_gb(self) -> float:
        return self.system_seconds / (sum(self.sizes) / 1e9)

    def mbps(self, each: int) -> float:
        return each / self.seconds / 1e6


def at_once(count: int, job: Callable[[int], int], ports: list[int]) -> Run:
    """Run ``job(i)`` for every stream at once; the time is the slowest stream's."""
    sizes = [0] * count
    ends = [0.0] * count
    cpu = time.process_time()
    system = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    start = time.perf_counter()

    def one(i: int) -> None:
        sizes[i] = job(i)
        ends[i] = time.perf_counter()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    system = resource.getrusage(resource.RUSAGE_SELF).ru_stime - system
    return Run(max(ends) - start, sizes, time.process_time() - cpu, system)


def log_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            lines += chunk.count(b"\n")
    return lines


# -- peak RSS of one capture, in a fresh process --------------------------------------------


def rss_child(port: int, directory: Path) -> None:
    capture(port, directory, "burst")
    print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def peak_rss_mib(blocks: int, workdir: Path) -> float:
    with sender(1, blocks) as ports:
        directory = workdir / f"rss-{blocks}"
        argv = [sys.executable, "-m", "bench.capture_bench", "--rss-child", str(ports[0])]
        out = subprocess.run([*argv, str(directory)], check=True, capture_output=True, text=True)
    shutil.rmtree(directory)
    return float(out.stdout.strip())


# -- main -----------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.missed: list[str] = []

    def figure(self, what: str, value: str, target: str, ok: bool | None) -> None:
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        print(f"{what:<44} {value:>24}   target {target}{mark}")
        if ok is False:
            self.missed.append(what)


def profile(count: int, blocks: int, workdir: Path) -> None:
    """cProfile of the reader threads of ``count`` consoles capturing ``blocks`` blocks each."""
    profilers: list[cProfile.Profile] = []
    run = Console._run

    def profiled(self: Console) -> None:
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()
        try:
            run(self)
        finally:
            profiler.disable()

    Console._run = profiled  # type: ignore[method-assign]
    try:
        with sender(count, blocks) as ports:
            at_once(count, lambda i: capture(ports[i], workdir, f"uart{i}"), ports)
    finally:
        Console._run = run  # type: ignore[method-assign]
    out = io.StringIO()
    stats = pstats.Stats(profilers[0], stream=out)
    for profiler in profilers[1:]:
        stats.add(profiler)
    stats.sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capture_bench")
    parser.add_argument("--mib", type=int, default=256, help="MiB per console (default 256)")
    parser.add_argument("--consoles", type=int, default=CONSOLES)
    parser.add_argument("--burst-mib", type=int, default=1024, help="the large RSS burst")
    parser.add_argument("--profile", action="store_true", help="cProfile the captures, then stop")
    parser.add_argument("--plain", action="store_true", help="a stream without ANSI colours")
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain:
        os.environ[PLAIN_ENV] = "1"
    if args.serve:
        serve(*args.serve)
        return 0
    if args.rss_child:
        rss_child(int(args.rss_child[0]), Path(args.rss_child[1]))
        return 0

    blocks = args.mib * (1 << 20) // BLOCK
    count = args.consoles
    workdir = Path(tempfile.mkdtemp(prefix="hil-capture-bench-"))
    try:
        if args.profile:
            profile(count, blocks, workdir)
            return 0
        report = Report()
        # The machine may be shared: its load says how much of the CPUs the run had.
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{count} streams of {args.mib} MiB at once; {os.cpu_count()} CPUs, load {load}")
        stream = "without colours" if args.plain else "with systemd's colours"
        print(f"stream {stream}; capture passes: {capscan.describe()}")
        with sender(count, blocks) as ports:
            limit = at_once(count, lambda i: plain_copy(ports[i], workdir / f"copy{i}"), ports)
            for i in range(count):
                (workdir / f"copy{i}").unlink()
            cap = at_once(count, lambda i: capture(ports[i], workdir, f"uart{i}"), ports)
            want, lines = expected(blocks)
            lost = [
                f"uart{i}"
                for i in range(count)
                if cap.sizes[i] != want or log_lines(workdir / f"uart{i}.log") != lines
            ]
            # Removed before the next run: the kernel writing their GBs back to disk meanwhile
            # would take CPU from it.
            for i in range(count):
                for suffix in ("raw", "log"):
                    (workdir / f"uart{i}.{suffix}").unlink()
            alone = at_once(1, lambda i: capture(ports[0], workdir, "alone"), ports)
        lost_alone = alone.sizes[0] != want
        for suffix in ("raw", "log"):
            (workdir / f"alone.{suffix}").unlink()
        limit_mbps, cap_mbps = limit.mbps(want), cap.mbps(want)
        report.figure("limit: socket-to-file copy, per stream", f"{limit_mbps:.1f} MB/s", "-", None)
        report.figure(
            f"capture, per console ({count} at once)",
            f"{cap_mbps:.1f} MB/s",
            f">= {MIN_MBPS:g} MB/s",
            cap_mbps >= MIN_MBPS,
        )
        report.figure("capture / limit", f"{cap_mbps / limit_mbps:.2f}", "-", None)
        report.figure("capture, one console alone", f"{alone.mbps(want):.1f} MB/s", "-", None)
        report.figure(
            "CPU s per GB (of it system): capture vs limit",
            f"{cap.cpu_per_gb():.1f} ({cap.system_per_gb():.1f}) vs "
            f"{limit.cpu_per_gb():.1f} ({limit.system_per_gb():.1f})",
            "-",
            None,
        )
        report.figure(
            "bytes lost (.raw size, .log lines)",
            ", ".join(lost) or "none",
            "none",
            not lost and not lost_alone and all(s == want for s in limit.sizes),
        )
        small = peak_rss_mib(1, workdir)
        large = peak_rss_mib(args.burst_mib * (1 << 20) // BLOCK, workdir)
        report.figure("peak RSS, 1 MiB burst", f"{small:.1f} MiB", "-", None)
        report.figure(
            f"peak RSS, {args.burst_mib} MiB burst",
            f"{large:.1f} MiB",
            f"<= 1 MiB burst's + {RSS_SLACK_MIB:g} MiB",
            large <= small + RSS_SLACK_MIB,
        )
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
        report.figure("load average at the end (1/5/15 min)", load, "-", None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if report.missed:
        print(f"capture_bench: missed: {', '.join(report.missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
