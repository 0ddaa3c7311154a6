"""What a captured console log says the firmware and Xen's FF-A mediator did, boot by boot:
versions, whether FF-A came up, SPs dropped for the bit-15 ID convention, FF-A failures and Xen
crashes (the violations), which Xen behaviour profile the messages match (reference §2, §5), and
the log's verdict: clean, violation, or no evidence.

``triage_file`` reads a log of any size in bounded memory, on every core for a large one;
``triage_stream`` and ``triage_bytes`` read the rest. Boots reach ``sink`` one at a time, in log
order; given ``rendered``, most boots of a large file arrive there instead, already rendered by
the workers (``boot_template``, the main process only puts in the line numbers), so the main
process does not become the bottleneck."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from hil.triage import parallel
from hil.triage.model import UNREADABLE, Boot, Triage, Verdict, Violation, boot_json
from hil.triage.pasted import unpaste
from hil.triage.scan import FileBuffer, Scanner
from hil.xen.log import TFA_BANNER

__all__ = [
    "TFA_BANNER",
    "Boot",
    "Triage",
    "Verdict",
    "Violation",
    "boot_json",
    "triage_bytes",
    "triage_file",
    "triage_stream",
]

# Logs up to this size may be mail pastes and are put back together first (hil.triage.pasted);
# a larger one is a capture, read as it is.
PASTE_MAX = 16 << 20

# Magic numbers of what a console log is often saved as instead of text.
_COMPRESSED = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"(\xb5/\xfd": "zstd",
    b"BZh": "bzip2",
    b"PK\x03\x04": "zip",
    b"\x04\x22\x4d\x18": "lz4",
}

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")

Sink = Callable[[Boot], None]
Rendered = Callable[[str, int], None]  # boots rendered as JSON by a worker, and how many


def triage_bytes(data: bytes, name: str, sink: Sink | None = None) -> Triage:
    """Triage a log held in memory (small: a paste, a test)."""
    result = Triage(name, sink)
    if data.startswith(_UTF16_BOMS):  # saved by a Windows editor: same lines, in UTF-8
        data = data.decode("utf-16", "replace").encode()
    text, line_of = unpaste(data) if len(data) <= PASTE_MAX else (data, None)
    Scanner(result, line_of).scan(text, 0, len(text))
    return _finish(result, data[:8])


def triage_file(
    path: Path,
    name: str,
    sink: Sink | None = None,
    workers: int | None = None,
    rendered: Rendered | None = None,
) -> Triage:
    """Triage a log file: in memory when small, else read block by block and, when large,
    split across ``workers`` processes (default: every core) at TF-A banners."""
    with path.open("rb") as stream:
        return _triage_open(stream, name, sink, workers, rendered)


def triage_stream(
    stream: BinaryIO, name: str, sink: Sink | None = None, rendered: Rendered | None = None
) -> Triage:
    """Triage a binary stream (stdin): a small one in memory, a large one spooled to a temporary
    file first so it is read like any file."""
    head = stream.read(PASTE_MAX + 1)
    if len(head) <= PASTE_MAX:
        return triage_bytes(head, name, sink)
    with tempfile.TemporaryFile(prefix="hil-triage-") as spool:
        spool.write(head)
        shutil.copyfileobj(stream, spool, 1 << 20)
        spool.flush()
        spool.seek(0)
        return _triage_open(spool, name, sink, None, rendered)


def _triage_open(
    stream: BinaryIO,
    name: str,
    sink: Sink | None,
    workers: int | None,
    rendered: Rendered | None = None,
) -> Triage:
    size = stream.seek(0, 2)
    stream.seek(0)
    if size <= PASTE_MAX:
        return triage_bytes(stream.read(), name, sink)
    buf = FileBuffer(stream.fileno())
    head = buf[:8]
    if size >= parallel.PARALLEL_MIN and workers != 1:
        return _finish(parallel.triage_parallel(buf, name, sink, workers, rendered), head)
    return _finish(parallel.triage_single(buf, Triage(name, sink, rendered)), head)


def _finish(result: Triage, head: bytes) -> Triage:
    result.finish()
    if result.verdict is Verdict.NO_EVIDENCE:
        result.no_evidence_reason = _no_evidence_reason(result, head)
    return result


def _no_evidence_reason(result: Triage, head: bytes) -> str:
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            return f"a {kind}-compressed file: decompress it first"
    if not head:
        return "the file is empty"
    if result.unreadable_boots:
        return (
            f"{result.unreadable_boots} boot(s) hold an FF-A line of Xen's that is no message it "
            "prints (damaged on the console, cut by a mail wrap, or unknown to this hil): it may "
            f"have been the violation, so the log cannot be called clean ('{UNREADABLE}' lines)"
        )
    if head.startswith(_UTF16_BOMS):
        return "UTF-16 text too large to convert here: convert it to UTF-8 first"
    if result.ffa_boots:
        return (
            "FF-A init never finished (no 'Using TEE mediator for FF-A' and no failure): "
            "the log stops during it"
        )
    if result.xen_boots:
        version = result.last.xen_version if result.last else None
        xen = f"Xen {version}" if version else "Xen"
        return (
            f"{xen} printed no FF-A line: a Xen without the FF-A mediator, or the log stops "
            "before FF-A init"
        )
    if result.banners:
        return (
            f"TF-A started {result.banners} time(s) but Xen never printed: the log stops before "
            "Xen, or Xen's console is another file"
        )
    return "no Xen or TF-A line in it: not a console log of this board, or cut before boot"
