"""Benchmark: ``hil triage --json`` against ``grep -c 'ffa:'`` on generated console logs.

Two logs, as a lab has them: a *few-boot* log (a handful of boots, each with a long dom0 run) and
a *many-boot* log (short boots one after another - TF-A, SPMC, Xen with FF-A init, a small dom0,
the probe - what a soak or a months-long nightly console holds: ~130,000 boots per GiB), each
triaged alone and then both at once. Each figure is printed with its target; exit 1 when one is
missed: triage within 1.5x grep's time (grep's output goes to a file - GNU grep stops at the
first match when it writes to /dev/null) and under 100 MB peak RSS.

    python -m bench.triage_bench [--size-mib N]      # default 256 MiB per log
    HIL_TRIAGE_BENCH_MIB=1024 python -m bench.triage_bench   # the 1 GiB figures
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from hil.xen.messages import message

MAX_RATIO = 1.5
MAX_RSS_MB = 100.0
VARIANTS = 16  # distinct boots, written round-robin: generation stays fast
RUNS = 3


def _xen(stamp: float | None, text: str) -> str:
    return f"(XEN) [{stamp:12.6f}] {text}\n" if stamp is not None else f"(XEN) {text}\n"


def _firmware(rng: random.Random, ids: list[int]) -> list[str]:
    out = ["NOTICE:  Booting Trusted Firmware\n"]
    for stage in ("BL1", "BL2", "BL31"):
        out.append(f"NOTICE:  {stage}: v2.13.0(release):v2.13.0-{rng.randrange(999)}-gabc1234\n")
        out.append(f"NOTICE:  {stage}: Built : 10:21:33, Jan 12 2026\n")
    for i in range(8):
        out.append(f"INFO:    BL2: Loading image id={i} at 0x{rng.getrandbits(32):08x}\n")
    out.append(f"SPMC: version 1.2, {len(ids)} partitions\n")
    out += [f"SPMC: partition 0x{i:04x} ctx 1\n" for i in ids]
    return out


def _xen_boot(rng: random.Random, ids: list[int], stamped: bool, lines: int) -> list[str]:
    t = 0.0

    def x(text: str) -> str:
        nonlocal t
        t += rng.random() / 1000
        return _xen(t if stamped else None, text)

    rest = "(ci@lab) (aarch64-linux-gnu-gcc (GCC) 13.3.0) debug=n Mon Jan 12 09:58:02 UTC 2026"
    out = [" Xen 4.22.0\n", x(message("xen_version").render(version="4.22.0", rest=rest))]
    for i in range(lines):
        out.append(x(f"GICv3: CPU{i % 4}: redistributor region 0 at 0x{rng.getrandbits(32):x}"))
    out.append(x(message("mediator_version").render(version="1.2")))
    out.append(x(message("firmware_version").render(version="1.2")))
    out.append(x(message("abi_unsupported").render(abi="FFA_RUN")))
    bad = [i for i in ids if not i & 0x8000]
    if bad:
        out.append(x(message("id_convention").render()))
    out += [x(message("sp_unusable").render(id=i)) for i in bad]
    out.append(x(message("tee_using").render(name="FF-A")))
    out += [x(f"Brought up {i} CPUs") for i in range(4)]
    out += [x("*** LOADING DOMAIN 0 ***"), x("Freed 372kB init memory.")]
    return out


def _dom0(rng: random.Random, lines: int) -> list[str]:
    t = 0.0
    out = []
    for i in range(lines):
        t += rng.random() / 100
        out.append(f"[{t:12.6f}] pci 0000:00:{i % 32:02x}.0: BAR {i % 6}: assigned [mem 0x{i:x}]\n")
        if i % 97 == 0:
            out.append(f"(d1) [{t:12.6f}] domU: systemd[1]: Started unit-{i}.service\n")
    out.append(f"(d1) {message('id_convention').render()}\n")  # a guest, not Xen
    out.append("HILPROBE begin versions=4 queries=2 el=1\n")
    out += [f"HILPROBE rx q=0 off=0x{i * 64:04x} hex={rng.randbytes(32).hex()}\n" for i in range(4)]
    out.append("HILPROBE end\n\x1b[1;32mbuildroot login:\x1b[0m \r\n")
    return out


def short_boot(rng: random.Random) -> Iterator[bytes]:
    """About 8 KB: one boot of a soak."""
    ids = [0x8001, 0x7FFE, 0x0010] if rng.random() < 0.5 else [0x8001, 0x8002]
    lines = _firmware(rng, ids) + _xen_boot(rng, ids, rng.random() < 0.5, 30) + _dom0(rng, 60)
    yield "".join(lines).encode()


def long_boot(rng: random.Random, size: int) -> Iterator[bytes]:
    """One boot whose dom0 runs for ``size`` bytes of output, in pieces (the bench process
    stays small: a child forked from it starts with its memory)."""
    ids = [0x8001, 0x7FFE, 0x0010] if rng.random() < 0.5 else [0x8001, 0x8002]
    head = "".join(_firmware(rng, ids) + _xen_boot(rng, ids, True, 150)).encode()
    body = "".join(_dom0(rng, 2000)).encode()
    yield head
    for _ in range(max(1, (size - len(head)) // len(body))):
        yield body


def generate(path: Path, size: int, boot: Callable[[random.Random], Iterable[bytes]]) -> int:
    """Write boots round-robin over VARIANTS until ``size`` bytes; returns how many."""
    rng = random.Random(0)
    blocks = [list(boot(rng)) for _ in range(min(VARIANTS, max(1, size // (4 << 20)) * 2))]
    count = 0
    with path.open("wb") as out:
        for block in itertools.cycle(blocks):
            if out.tell() >= size:
                break
            out.writelines(block)
            count += 1
    return count


def best_run(argv: list[str], out: Path, runs: int = RUNS) -> tuple[float, float, float]:
    """Best wall time of ``runs`` runs, the CPU time (user + system, with the processes it
    waited for) of that run, and the largest peak RSS (MB) of any one process among them.
    Output goes to a file: grep stops at the first match when its output is /dev/null."""
    best, cpu, rss_mb = float("inf"), 0.0, 0.0
    for _ in range(runs):
        with out.open("wb") as sink:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=sink)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            if wall < best:
                best, cpu = wall, usage.ru_utime + usage.ru_stime
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 above
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}")
        rss_mb = max(rss_mb, usage.ru_maxrss / 1024)  # Linux reports KiB; the largest process
    return best, cpu, rss_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.triage_bench")
    default = int(os.environ.get("HIL_TRIAGE_BENCH_MIB", "256"))
    parser.add_argument("--size-mib", type=int, default=default, help="size of each log")
    args = parser.parse_args(argv)
    hil = shutil.which("hil") or str(Path(sys.executable).with_name("hil"))
    size = args.size_mib * 1024 * 1024
    ok = True
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        few, many = Path(tmp) / "few-boots.log", Path(tmp) / "many-boots.log"
        few_boots = generate(few, size, lambda rng: long_boot(rng, size // 8))
        many_boots = generate(many, size, short_boot)
        out = Path(tmp) / "out"
        cases = [
            (f"few-boot log ({few_boots} boots)", [few]),
            (f"many-boot log ({many_boots} boots)", [many]),
            ("both logs at once", [few, many]),
        ]
        for label, logs in cases:
            files = [str(p) for p in logs]
            best_run(["cat", *files], out, runs=1)  # warm the page cache for both
            grep, grep_cpu, _ = best_run(["grep", "-c", "ffa:", *files], out)
            triage, triage_cpu, rss_mb = best_run([hil, "triage", "--json", *files], out)
            mib = sum(p.stat().st_size for p in logs) / 2**20
            ratio = triage / grep
            passed = ratio <= MAX_RATIO and rss_mb < MAX_RSS_MB
            ok &= passed
            print(
                f"{label}, {mib:.0f} MiB: grep -c {grep:.2f} s ({grep_cpu:.2f} s CPU), "
                f"hil triage --json {triage:.2f} s ({triage_cpu:.2f} s CPU on {os.cpu_count()} "
                f"cores): ratio {ratio:.2f} (target <= {MAX_RATIO}), peak RSS {rss_mb:.0f} MB "
                f"(target < {MAX_RSS_MB:.0f}) {'ok' if passed else 'MISSED'}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
