"""The machine failing under hil (a full disk, a results or lock directory it cannot use) is exit
3 with one line, never a traceback or exit 1, and what finished before stays recorded."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import hil.report
import hil.runner
from hil.cli import main
from hil.console import Console, ConsoleGroup, ConsoleLost
from tests.reliability.support import write_lab
from tests.tcp_console import ScriptedConsoleServer


class FullDisk:
    """A capture file on a full disk: every write fails with ENOSPC."""

    def write(self, *_: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    flush = close = write


def test_a_capture_that_cannot_be_written_loses_the_console(tmp_path: Path) -> None:
    """The reader must not die with a traceback and leave waits to time out: the console is
    lost at once, and closing its group says the capture has a hole."""
    errors: list[BaseException] = []
    hook, threading.excepthook = threading.excepthook, lambda args: errors.append(args.exc_value)
    try:
        with ScriptedConsoleServer([[0.3, b"NOTICE:  Booting\n"]]) as server:
            group = ConsoleGroup({"ns": server.url}, tmp_path)
            with pytest.raises(ConsoleLost) as closing, group:
                console: Console = group["ns"]
                console._raw.close()  # type: ignore[union-attr]
                console._raw = FullDisk()  # type: ignore[assignment]
                with pytest.raises(ConsoleLost) as waiting:
                    console.expect("never", timeout=30)
    finally:
        threading.excepthook = hook
    assert errors == []
    for err in (waiting.value, closing.value):
        assert "cannot write its capture" in str(err) and "No space left" in str(err)


def test_reports_that_cannot_be_written_are_exit_3_and_the_verdicts_stay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "report.html")

    monkeypatch.setattr(hil.runner, "write_reports", full_disk)
    results = tmp_path / "results"
    lab = write_lab(tmp_path / "lab")
    code = main(["run", "--lab", str(lab), "--results", str(results), "--scenario", "all-secure"])
    out, err = capsys.readouterr()
    assert code == 3
    assert err.count("\n") == 1 and "cannot write the reports" in err, err
    assert "No space left on device" in err
    assert "[v0] all-secure: PASS" in out  # the verdict was printed as it came
    (run_dir,) = [p for p in results.iterdir() if not p.is_symlink()]
    assert (run_dir / "v0" / "all-secure" / "ns.raw").stat().st_size > 0


@pytest.mark.parametrize(
    ("expect", "verdict", "exit_code"),
    [((), "pass", 3), (("--expect-profile", "xen-4.21"), "fail", 1)],
    ids=["all-passed", "a-check-failed"],
)
def test_when_report_html_cannot_be_written_the_summary_still_is(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    expect: tuple[str, ...],
    verdict: str,
    exit_code: int,
) -> None:
    """report.html is the big one: a disk too full for it may still take the summary, which
    is the record a nightly's dashboard reads: it must say what hil exits with (not 0 for a run
    that exits 3), and a failed check still exits 1 (a regression outranks a broken lab)."""
    write = hil.report.atomic_write

    def full_for_html(path: Path, data: bytes, *args: object, **kwargs: object) -> None:
        if path.name == "report.html":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write(path, data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hil.report, "atomic_write", full_for_html)
    results = tmp_path / "results"
    lab = write_lab(tmp_path / "lab")
    argv = ["run", "--lab", str(lab), "--results", str(results), "--scenario", "all-secure"]
    code = main([*argv, *expect])
    err = capsys.readouterr().err
    assert code == exit_code
    assert err.count("\n") == 1 and "captures and summary.json are in" in err, err
    (run_dir,) = [p for p in results.iterdir() if not p.is_symlink()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [c["verdict"] for c in summary["run"]["cases"]] == [verdict]
    assert summary["exit_code"] == exit_code
    assert summary["reports"].startswith("incomplete: ") and "No space left" in summary["reports"]


@pytest.mark.parametrize("kind", ["a file", "unwritable", "under a file"])
def test_an_unusable_results_dir_is_exit_3_before_any_board(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    lab = write_lab(tmp_path / "lab")
    results = tmp_path / "results"
    if kind == "a file":
        results.write_text("")
    elif kind == "unwritable":
        results.mkdir()
        results.chmod(0o500)
        if os.access(results, os.W_OK):
            results = Path("/proc/hil-results")  # root writes anywhere; /proc takes no dirs
    else:
        (tmp_path / "file").write_text("")
        results = tmp_path / "file" / "results"
    code = main(["run", "--lab", str(lab), "--results", str(results), "--scenario", "all-secure"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1 and err.startswith("hil: error: results directory: "), err
    assert not (tmp_path / "lab" / ".board").exists()


def test_an_unusable_lock_dir_is_an_infra_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locks").write_text("")  # a file where the lock directory should be
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path / "locks"))
    lab = write_lab(tmp_path / "lab")
    results = tmp_path / "results"
    code = main(["run", "--lab", str(lab), "--results", str(results), "--scenario", "all-secure"])
    out, err = capsys.readouterr()
    assert code == 3, err
    assert "Traceback" not in err
    assert "INFRA_ERROR" in out and "lock" in out


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a results directory that fills up mid-capture."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (run the tests as root, as CI does)")
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_disk_that_fills_during_capture_is_exit_3_with_one_line(
    tmp_path: Path, tiny_disk: Path
) -> None:
    burst = {"burst": {"stage": "xen", "size": 400_000}}
    lab = write_lab(tmp_path / "lab", burst, boot_attempts=1)
    done = subprocess.run(
        [sys.executable, "-m", "hil", "run", "--lab", str(lab), "--results", str(tiny_disk / "r"),
         "--scenario", "all-secure"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.count("\n") <= 1, done.stderr
    assert "No space left on device" in done.stdout + done.stderr
