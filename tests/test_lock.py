import fcntl
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from hil.cli import main
from hil.errors import ConfigError, ExitCode, InfraError
from hil.lock import SHARED_DIRS, BoardBusy, BoardLock, default_lock_dir, shared_dir
from tests.labs import write_lab

REPO = Path(__file__).resolve().parent.parent
USER = pwd.getpwuid(os.geteuid()).pw_name

HOLD = """
import sys, time
from pathlib import Path
from hil.lock import BoardLock
lock = BoardLock("juno0", directory=Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


def hold_in_child(tmp_path) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "held"
    return child


def test_second_user_is_told_who_holds_the_board(tmp_path):
    child = hold_in_child(tmp_path)
    try:
        with pytest.raises(BoardBusy) as info:
            BoardLock("juno0", directory=tmp_path).acquire()
        assert (
            str(info.value)
            == f"board juno0 is in use by pid {child.pid} on {os.uname().nodename} (user {USER})"
        )
        assert info.value.exit_code is ExitCode.INFRA
    finally:
        child.kill()
        child.wait()


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    child = hold_in_child(tmp_path)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with BoardLock("juno0", directory=tmp_path):
        pass


def test_waiter_gets_the_board_when_it_is_released(tmp_path):
    child = hold_in_child(tmp_path)
    try:
        started = time.monotonic()
        subprocess.Popen(["sh", "-c", f"sleep 0.3; kill {child.pid}"])
        with BoardLock("juno0", wait_s=10, directory=tmp_path):
            assert time.monotonic() - started < 5
    finally:
        child.kill()
        child.wait()


def test_boards_lock_independently_and_names_are_validated(tmp_path):
    with (
        BoardLock("a", directory=tmp_path),
        BoardLock("b", directory=tmp_path),
        pytest.raises(BoardBusy),
    ):
        BoardLock("a", directory=tmp_path).acquire()
    with pytest.raises(ConfigError):
        BoardLock("../etc/passwd", directory=tmp_path)


# -- one lock directory for the host, whoever runs hil ---------------------------------------------

HOLD_DEFAULT = """
import sys, time
from hil.lock import BoardBusy, BoardLock
try:
    lock = BoardLock(sys.argv[1]).acquire()
except BoardBusy as exc:
    print(exc, flush=True)
    sys.exit(3)
print("held", flush=True)
time.sleep(60)
"""


def test_the_default_lock_dir_is_the_hosts_not_the_users(monkeypatch):
    monkeypatch.delenv("HIL_LOCK_DIR")
    directory, shared = default_lock_dir()
    assert directory in SHARED_DIRS and shared
    assert not directory.is_relative_to(Path.home())


def test_two_users_exclude_each_other(monkeypatch, tmp_path):
    """Another user (nobody), with another home, holds a board through the default lock dir:
    root is refused it, and the other way round."""
    if os.geteuid() != 0 or not shutil.which("python3", path="/usr/bin"):
        pytest.skip("needs root and /usr/bin/python3 to run a second user (run the suite as root)")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' to be the second user")
    monkeypatch.delenv("HIL_LOCK_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    board = f"t{uuid.uuid4().hex[:12]}"
    env = {"PYTHONPATH": str(REPO), "HOME": "/nonexistent", "PATH": "/usr/bin:/bin"}

    def as_nobody() -> subprocess.Popen:
        return subprocess.Popen(
            ["/usr/bin/python3", "-c", HOLD_DEFAULT, board],
            stdout=subprocess.PIPE, text=True, user=nobody.pw_uid, env=env, cwd="/",
        )  # fmt: skip

    lock = BoardLock(board)
    try:
        # Root makes the directory if it is missing (as a lab's first run would, or tmpfiles.d):
        # the owner of a sticky directory may remove anyone's lock file in it.
        BoardLock(board).acquire().release()
        child = as_nobody()
        try:
            assert child.stdout.readline().strip() == "held"
            with pytest.raises(BoardBusy, match=r"\(user nobody\)$"):
                BoardLock(board).acquire()
        finally:
            child.kill()
            child.wait()
        with BoardLock(board):
            other = as_nobody()
            line = other.stdout.readline().strip()
            assert other.wait(10) == 3
            assert line.startswith(f"board {board} is in use by pid {os.getpid()}"), line
        mode = os.stat(lock.directory).st_mode
        assert stat.S_IMODE(mode) == 0o1777, oct(mode)
    finally:
        lock.path.unlink(missing_ok=True)


def test_the_shared_dir_is_chosen_by_the_host_and_made_sticky(tmp_path, monkeypatch):
    closed, open_ = tmp_path / "closed", tmp_path / "open"
    closed.mkdir(mode=0o755)
    open_.mkdir()
    open_.chmod(0o1777)
    candidates = (closed / "hil", open_ / "hil")
    # Nobody but root could create closed/hil: every user falls back to the same second one.
    assert shared_dir(candidates) == open_ / "hil"
    (closed / "hil").mkdir()
    assert shared_dir(candidates) == closed / "hil"  # once it exists, everyone uses it
    monkeypatch.setattr("hil.lock.SHARED_DIRS", (open_ / "fresh",))
    monkeypatch.delenv("HIL_LOCK_DIR")
    old = os.umask(0o022)
    try:
        with BoardLock("juno0") as lock:
            assert lock.directory == open_ / "fresh"
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(open_ / "fresh").st_mode) == 0o1777
    assert stat.S_IMODE(os.stat(open_ / "fresh" / "juno0.lock").st_mode) == 0o666


# -- lock files: never follow, never truncate, show the holder inert -------------------------------


def test_a_planted_symlink_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "juno0.lock").symlink_to(victim)
    with pytest.raises(InfraError, match="symbolic link: not followed"):
        BoardLock("juno0", directory=locks).acquire()
    assert victim.read_text() == "precious\n"


def test_a_planted_hard_link_is_not_written(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    locks = tmp_path / "locks"
    locks.mkdir()
    os.link(victim, locks / "juno0.lock")
    with pytest.raises(InfraError, match="not a plain file with one name"):
        BoardLock("juno0", directory=locks).acquire()
    assert victim.read_text() == "precious\n"


def test_a_lock_file_is_never_truncated(tmp_path):
    """hil writes its holder record over the start and nothing else: a file it did not make
    keeps its length (no ftruncate of whatever was there)."""
    path = tmp_path / "juno0.lock"
    path.write_bytes(b"x" * 1000)
    with BoardLock("juno0", directory=tmp_path):
        assert path.stat().st_size == 1000
        assert path.read_bytes().startswith(f"pid {os.getpid()} ".encode())
    assert path.stat().st_size == 1000


HOSTILE = "\x1b]0;pwned\x07\x1b[2J\u202eevil\nline two"


def test_the_holder_text_is_made_inert(tmp_path, capsys):
    """Anyone on the host can write a lock file: what hil shows of it drives no terminal."""
    lab = write_lab(tmp_path, {"vb0": {}})
    locks = Path(os.environ["HIL_LOCK_DIR"])
    locks.mkdir(parents=True, exist_ok=True)
    fd = os.open(locks / "vb0.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, HOSTILE.encode())
        with pytest.raises(BoardBusy) as info:
            BoardLock("vb0").acquire()
        assert main(["boards", "--lab", str(lab)]) == 0
    finally:
        os.close(fd)
    out = capsys.readouterr().out
    for shown in (str(info.value), out):
        assert "\x1b" not in shown and "\u202e" not in shown and "\x07" not in shown
        assert "\\x1b]0;pwned" in shown and "\\u202eevil\\nline two" in shown
