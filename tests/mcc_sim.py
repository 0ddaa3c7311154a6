"""A simulated Juno MCC behind a TCP serial port (``socket://``, as ser2net gives one), with a
directory as its USB mass storage, for tests of hil.boards.juno.

It says what an MCC says at the points hil relies on: the autoboot banner with "Press Enter to
stop auto boot...", the ``Cmd>`` prompt, "In reset" when Enter came too late, ``usb_on``
(the storage appears to the host after ``usb_delay``) and ``reboot``, at which it "flashes" what
images.txt names (recorded in ``flashed``; a missing file is a flash error, as on the MCC)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path, PureWindowsPath

from hil.ffa.spmc import _HEADER as spmc_header
from hil.ffa.spmc import SpmcConfig
from hil.firmware.xen import PrebuiltXen
from hil.probe import ProbePlan
from hil.sim.board import VirtualBoard
from hil.sim.boot_script import BootConfig, boot_script
from hil.sim.bundle import SimBundle
from hil.sim.server import ConsolePort
from hil.xen.oracle import XenOptions

BANNER = b"\r\nARM V2M-Juno Boot loader v1.0.0\r\nHBI0262 build 2026\r\n\r\n"
AUTOBOOT = b"Press Enter to stop auto boot...\r\n"
NOR_BASE = 0x08000000  # V2M_FLASH0_BASE: NOR flash 0 in the AP's physical address space
FIP_OFFSET = 0x0  # where BL1/BL2 read the FIP (PLAT_ARM_FLASH_IMAGE_BASE)


class SimulatedMcc:
    """``mode``: ``normal``; ``late`` (Enter arrives after autorun began: "In reset"); ``mute``
    (prints nothing); ``no-usb`` (usb_on answers but the storage never appears)."""

    def __init__(self, card: Path, images_txt: str, mode: str = "normal", usb_delay: float = 0.2):
        self.card, self.images_txt, self.mode, self.usb_delay = card, images_txt, mode, usb_delay
        self.usb_visible = threading.Event()
        self.commands: list[str] = []
        self.flashed: dict[str, bytes] = {}
        self.nor: dict[int, bytes] = {}  # NOR flash offset -> the image the MCC wrote there
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
        while True:  # one MCC session per connection, each as after the board's power-up
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
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

    def read_nor(self, address: int, size: int) -> bytes:
        """``size`` bytes at physical ``address`` (the AP sees NOR flash at :data:`NOR_BASE`):
        they must lie inside one flashed image, else the read is an error, as reading whatever
        the flash held before would be on a board."""
        offset = address - NOR_BASE
        for start, data in self.nor.items():
            if start <= offset and offset + size <= start + len(data):
                return data[offset - start : offset - start + size]
        raise ValueError(f"nothing flashed at {address:#x}+{size:#x}")

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
        addresses = dict(re.findall(r"^NOR(\d+)ADDRESS:\s*(\S+)", listing, re.MULTILINE))
        for n, entry in re.findall(r"^NOR(\d+)FILE:\s*(\S+)", listing, re.MULTILINE):
            parts = PureWindowsPath(entry).parts[1:]
            self.flashed[entry] = data = (self.card.joinpath(*parts)).read_bytes()
            self.nor[int(addresses[n], 16)] = data


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


class SimulatedJuno:
    """A Juno behind its simulated MCC: at each power-on (the lab's power command creates
    ``power_file``) the MCC flashes what images.txt on the card names, and the board's two UARTs
    (TCP ports ``urls``) show the boot of that flash, read the way the board reads it: the FIP
    from NOR offset 0 (``fiptool unpack``), the scenario blob from its BL32. Without Xen the
    probe plan comes from BL33. When HW_CONFIG (the DTB BL31 hands BL33 in x0) has a /chosen
    dom0 module, BL33 is Xen: the sim boots as the release of that Xen (the version in its
    embedded .config) with its build options and its command line, and reads dom0, and the plan
    in it, from the physical address the DTB names, which must be flashed NOR. hil.sim's model
    boots them.
    ``windows`` are the (offset, size) of the SPMC's scenario and the probe's plan."""

    def __init__(
        self,
        card: Path,
        images_txt: str,
        fiptool: Path,
        windows: tuple[tuple[int, int], tuple[int, int]],
        power_file: Path,
    ) -> None:
        self.mcc = SimulatedMcc(card, images_txt)
        self.fiptool, self.windows, self.power_file = fiptool, windows, power_file
        self.boots = 0
        self.xen_boots = 0  # boots where BL33 was Xen with dom0 read from NOR
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._sent = Path(tempfile.mkdtemp(prefix="juno-sim-"))
        self.ports = {c: ConsolePort(c, self._sent / c, settle_s=0.0) for c in ("ns", "secure")}
        started = {c: self._call(p.start("127.0.0.1", 0)) for c, p in self.ports.items()}
        self.urls = {"normal": f"socket://127.0.0.1:{started['ns']}"}
        self.urls["secure"] = f"socket://127.0.0.1:{started['secure']}"
        self.board = VirtualBoard("juno", BootConfig("none"), self.ports)
        self.board.powered = False
        self._stop = threading.Event()
        threading.Thread(target=self._watch_power, daemon=True).start()

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _watch_power(self) -> None:
        while not self._stop.wait(0.02):
            if self.power_file.exists():
                self.power_file.unlink()
                self._power_on()

    def _power_on(self) -> None:
        self.mcc.flashed.clear()
        self.mcc.nor.clear()
        self.mcc._flash()
        out = Path(tempfile.mkdtemp(dir=self._sent))
        (out / "fip.bin").write_bytes(self.mcc.nor[FIP_OFFSET])
        argv = [str(self.fiptool), "unpack", "--out", str(out), str(out / "fip.bin")]
        subprocess.run(argv, check=True, capture_output=True)
        (spmc_at, spmc_size), (plan_at, plan_size) = self.windows
        window = (out / "tos-fw.bin").read_bytes()[spmc_at : spmc_at + spmc_size]
        _, _, _, _, data_len, n_fids, _ = spmc_header.unpack_from(window)
        spmc = SpmcConfig.decode(window[: spmc_header.size + 4 * n_fids + data_len])
        module = dom0_module(out / "hw-config.bin")
        if module is None:
            config, probe = BootConfig("none"), (out / "nt-fw.bin").read_bytes()
        else:
            address, size, xen_args = module
            config = xen_boot_config(out / "nt-fw.bin", xen_args)
            probe = self.mcc.read_nor(address, size)
            self.xen_boots += 1
        plan_window = probe[plan_at : plan_at + plan_size]
        n_versions = int.from_bytes(plan_window[8:12], "little")
        at = 12 + 4 * n_versions
        n_queries = int.from_bytes(plan_window[at : at + 4], "little")
        plan = ProbePlan.decode(plan_window[: at + 4 + 24 * n_queries])
        script = boot_script(config, SimBundle(out, "flashed", spmc, plan))
        self.boots += 1

        def boot() -> None:
            self.board.config = config
            self.board.script = script
            self.board.reset()

        self._loop.call_soon_threadsafe(boot)

    def close(self) -> None:
        self._stop.set()
        self.mcc.close()
        self._call(self.board.close())
        self._loop.call_soon_threadsafe(self._loop.stop)


def _fdtget(*args: str | Path) -> str:
    return subprocess.run(["fdtget", *map(str, args)], capture_output=True, text=True).stdout


def dom0_module(dtb: Path) -> tuple[int, int, str] | None:
    """The (address, size) of the ``multiboot,kernel`` module in ``dtb``'s /chosen and Xen's
    command line there, or None (no such DTB or module: nothing for a Xen to boot)."""
    if not dtb.is_file():
        return None
    for node in _fdtget("-l", dtb, "/chosen").split():
        path = f"/chosen/{node}"
        if "multiboot,kernel" in _fdtget(dtb, path, "compatible"):
            hi, lo, size_hi, size_lo = (
                int(c, 16) for c in _fdtget("-t", "x", dtb, path, "reg").split()
            )
            args = _fdtget(dtb, "/chosen", "xen,xen-bootargs").strip()
            return hi << 32 | lo, size_hi << 32 | size_lo, args
    return None


def xen_boot_config(image: Path, command_line: str) -> BootConfig:
    """How hil.sim models a Xen image booted with ``command_line``: its release (profile) from
    the version in its embedded .config, its build options from that .config, dom0's vCPUs and
    the TEE mediator from the command line."""
    xen = PrebuiltXen.inspect(image)
    kconfig, version = xen.kconfig(), xen.version
    if kconfig is None or version is None:
        raise ValueError(f"{image}: BL33 has no embedded .config: not a Xen hil can model")
    args = dict(arg.partition("=")[::2] for arg in command_line.split())
    options = XenOptions.of_build(kconfig, int(args.get("dom0_max_vcpus", "1")))
    profile = "xen-" + ".".join(version.split(".")[:2])
    return BootConfig(profile, replace(options, tee_cmdline=args.get("tee")))
