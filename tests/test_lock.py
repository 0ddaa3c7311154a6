import os
import signal
import subprocess
import sys
import time

import pytest

from hil.errors import ConfigError, ExitCode
from hil.lock import BoardBusy, BoardLock

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
            str(info.value) == f"board juno0 is in use by pid {child.pid} on {os.uname().nodename}"
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
