"""A simulated Juno MCC behind a TCP serial port (``socket://``, as ser2net gives one), with a
directory as its USB mass storage, for tests of hil.boards.juno.

It says what an MCC says at the points hil relies on: the autoboot banner with "Press Enter to
stop auto boot...", the ``Cmd>`` prompt, "In reset" when Enter came too late, ``usb_on``
(the storage appears to the host after ``usb_delay``) and ``reboot``, at which it "flashes" what
images.txt names (recorded in ``flashed``; a missing file is a flash error, as on the MCC)."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from pathlib import Path, PureWindowsPath

BANNER = b"\r\nARM V2M-Juno Boot loader v1.0.0\r\nHBI0262 build 2026\r\n\r\n"
AUTOBOOT = b"Press Enter to stop auto boot...\r\n"


class SimulatedMcc:
    """``mode``: ``normal``; ``late`` (Enter arrives after autorun began: "In reset"); ``mute``
    (prints nothing); ``no-usb`` (usb_on answers but the storage never appears)."""

    def __init__(self, card: Path, images_txt: str, mode: str = "normal", usb_delay: float = 0.2):
        self.card, self.images_txt, self.mode, self.usb_delay = card, images_txt, mode, usb_delay
        self.usb_visible = threading.Event()
        self.commands: list[str] = []
        self.flashed: dict[str, bytes] = {}
        self.rebooted = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        # shutdown first: a close alone leaves the thread blocked in accept() listening.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(5)

    def _serve(self) -> None:
        try:
            conn, _ = self._server.accept()
        except OSError:
            return
        with conn:
            if self.mode == "mute":
                while conn.recv(4096):
                    pass
                return
            conn.sendall(BANNER + AUTOBOOT)
            line = b""
            at_prompt = False
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                line += data
                while b"\r" in line:
                    text, _, line = line.partition(b"\r")
                    command = text.decode().strip()
                    if not at_prompt:
                        if self.mode == "late":
                            conn.sendall(b"\r\nPowering up system...\r\nIn reset\r\n")
                            continue
                        at_prompt = True
                        conn.sendall(b"\r\nCmd> ")
                        continue
                    if command:
                        self.commands.append(command)
                    conn.sendall(self._answer(command) + b"Cmd> ")

    def _answer(self, command: str) -> bytes:
        if command == "":
            return b"\r\n"
        if command == "usb_on":
            if self.mode != "no-usb":
                threading.Timer(self.usb_delay, self.usb_visible.set).start()
            return b"\r\nEnabling debug USB...\r\n"
        if command == "reboot":
            self._flash()
            self.rebooted.set()
            return b"\r\nPowering down...\r\nRebooting...\r\n"
        return b"\r\nError: unrecognized command\r\n"

    def _flash(self) -> None:
        listing = (self.card / self.images_txt).read_text()
        for entry in re.findall(r"^NOR\d+FILE:\s*(\S+)", listing, re.MULTILINE):
            parts = PureWindowsPath(entry).parts[1:]
            self.flashed[entry] = (self.card.joinpath(*parts)).read_bytes()


class DirectoryStorage:
    """The host side (hil.boards.juno.MassStorage): the card is ``sim.card`` once visible."""

    def __init__(self, sim: SimulatedMcc, fail_mount: bool = False) -> None:
        self.sim, self.fail_mount = sim, fail_mount
        self.mounted = False
        self.unmounts = 0

    def find(self, label: str) -> Path | None:
        return Path(f"/dev/disk/by-label/{label}") if self.sim.usb_visible.is_set() else None

    def mount(self, device: Path) -> Path:
        if self.fail_mount:
            raise OSError(f"mount: {device}: wrong fs type, bad option, bad superblock")
        self.mounted = True
        return self.sim.card

    def unmount(self, directory: Path) -> None:
        self.mounted = False
        self.unmounts += 1


def wait_for(event: threading.Event, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        event.wait(0.05)
    return event.is_set()
