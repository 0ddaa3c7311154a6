"""Juno r2: a real board. Its power is a PDU (``pdu-command``) or a labgrid place; its images
reach its NOR flash through the Motherboard Configuration Controller (MCC), which
``deploy = {backend = "mcc", ...}`` drives (:class:`MccDeployer`).

The MCC deploy, step by step, each failure one InfraError naming its step:

1. ``power on`` (when ``power_on`` is given): switch the board on so the MCC starts;
2. ``interrupt autorun``: on the MCC console, answer "Press Enter to stop auto boot..." with
   Enter and reach the ``Cmd>`` prompt ("In reset" instead means the interrupt came too late);
3. ``usb_on``: the MCC exposes its microSD card as USB mass storage;
4. ``wait for mass storage``: the host sees a filesystem labelled ``label`` (bounded wait);
5. ``mount``, 6. ``copy`` (``images.txt`` and every file it names), 7. ``sync``, 8. ``unmount``;
9. ``reboot``: the MCC's ``reboot`` flashes the NOR from images.txt and boots (``reboot =
   false``: left to the power back-end's power-cycle at boot).

Bundles for juno-r2 boards (:func:`bundle`): TF-A 2.12.1 ``PLAT=juno SPD=spmd
SPMD_SPM_AT_SEL2=0 ARM_LINUX_KERNEL_AS_BL33=1`` (with firmware/tf-a/juno-spmd.patch: 2.12.1 has
no SPMD support for Juno), the lab's SCP firmware (``scp_bl2``, not redistributable) and the test
SPMC in the FIP, and the ``images.txt`` that puts the FIP and BL1 in NOR flash. BL33 is the
probe, or the board's Xen with no loader: hil's Juno DTB with Xen's /chosen as the FIP's
HW_CONFIG (BL31 hands its address to BL33 in x0) and the probe as dom0 in NOR flash, where the
MCC writes it and Xen reads it (:func:`xen_dts` says how, :data:`WITH_XEN` where).

The host side of steps 4-8 is a :class:`MassStorage`; :class:`HostMassStorage` finds the device
under /dev/disk/by-label and mounts it with the lab's argv. Options: ``console`` (the MCC's
serial URL, required), ``label`` (default ``JUNO``), ``images_txt`` (where the MCC reads the
image list, default ``SITE1/HBI0262E/images.txt``: check your board's HBI revision), ``power_on``
(argv), ``mount`` / ``unmount`` (argv with ``{device}`` / ``{dir}`` elements), ``mount_dir``,
``prompt_timeout`` (s, default 60), ``usb_timeout`` (s, default 60), ``reboot`` (default true)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Protocol

import serial
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from hil.backend import BackendSpec, run_command
from hil.boards.builds import board_xen, scenario_images
from hil.bundle import Bundle, load_verified, write_bundle
from hil.config import display_path
from hil.errors import ConfigError, InfraError
from hil.firmware import toolchain
from hil.firmware.build import (
    FIRMWARE_DIR,
    JUNO,
    BuildError,
    Firmware,
    build_firmware,
    default_build_dir,
    run_logged,
)
from hil.firmware.bundle import XEN, XEN_CONFIG, XenImage
from hil.firmware.xen_dt import chosen_dts, xen_command_line
from hil.lab import BoardConfig
from hil.scenario import Scenario
from hil.xen.oracle import XenOptions

AUTOBOOT = re.compile(rb"Press Enter to stop auto boot")
PROMPT = re.compile(rb"Cmd>")
IN_RESET = re.compile(rb"In reset")
IMAGES_TXT = "images_txt"  # the bundle role of the MCC's image list
NOR_FILE = re.compile(r"^\s*NOR\d+FILE\s*:\s*(\S+)", re.MULTILINE | re.IGNORECASE)
OPTIONS = (
    "backend", "console", "label", "images_txt", "power_on", "mount", "unmount", "mount_dir",
    "prompt_timeout", "usb_timeout", "reboot",
)  # fmt: skip
DEVICE, DIRECTORY = "{device}", "{dir}"


class MassStorage(Protocol):
    """The host's view of the MCC's USB mass storage."""

    def find(self, label: str) -> Path | None: ...  # the device, once the host sees it
    def mount(self, device: Path) -> Path: ...  # the directory its filesystem is mounted on
    def unmount(self, directory: Path) -> None: ...


class HostMassStorage:
    """/dev/disk/by-label/<label>, mounted on ``mount_dir`` with the lab's argv (default
    ``mount {device} {dir}`` / ``umount {dir}``: root, or an fstab ``user`` entry)."""

    def __init__(
        self,
        board: str,
        mount_dir: Path,
        mount: Sequence[str] = ("mount", DEVICE, DIRECTORY),
        unmount: Sequence[str] = ("umount", DIRECTORY),
        by_label: Path = Path("/dev/disk/by-label"),
    ) -> None:
        self.board, self.mount_dir, self.by_label = board, mount_dir, by_label
        self.mount_argv, self.unmount_argv = tuple(mount), tuple(unmount)

    def find(self, label: str) -> Path | None:
        device = self.by_label / label
        return device.resolve() if device.exists() else None

    def _argv(self, argv: Sequence[str], device: Path | None = None) -> list[str]:
        values = {DEVICE: str(device), DIRECTORY: str(self.mount_dir)}
        return [values.get(arg, arg) for arg in argv]

    def mount(self, device: Path) -> Path:
        self.mount_dir.mkdir(parents=True, exist_ok=True)
        run_command(self.board, "MCC deploy: mount", self._argv(self.mount_argv, device), 60)
        return self.mount_dir

    def unmount(self, directory: Path) -> None:
        run_command(self.board, "MCC deploy: unmount", self._argv(self.unmount_argv), 60)


class MccConsole:
    """The MCC's serial console: send a line, wait for one of some patterns. What it said is
    kept (``transcript``) so that a failure can quote it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.transcript = bytearray()
        self._port: serial.SerialBase | None = None
        self._seen = 0  # transcript offset already matched

    def open(self) -> None:
        self._port = serial.serial_for_url(self.url, timeout=0.1)

    def close(self) -> None:
        if self._port is not None:
            self._port.close()
            self._port = None

    def send(self, text: str) -> None:
        assert self._port is not None
        self._port.write(text.encode())
        self._port.flush()

    def expect(self, patterns: dict[str, re.Pattern[bytes]], timeout: float) -> str | None:
        """The name of the first pattern seen in new output within ``timeout``, or None."""
        assert self._port is not None
        deadline = time.monotonic() + timeout
        while True:
            text = bytes(self.transcript[self._seen :])
            hits = [(m.end(), name) for name, p in patterns.items() if (m := p.search(text))]
            if hits:
                end, name = min(hits)
                self._seen += end
                return name
            if time.monotonic() >= deadline:
                return None
            self.transcript += self._port.read(4096)

    def last_line(self) -> str:
        lines = bytes(self.transcript).decode(errors="replace").strip().splitlines()
        return lines[-1].strip() if lines else ""


@dataclass
class MccDeployer:
    """Deploy a Juno bundle (images.txt and the files it names) through the MCC."""

    board: str
    console: str
    storage: MassStorage
    label: str = "JUNO"
    images_txt: str = "SITE1/HBI0262E/images.txt"
    power_on: tuple[str, ...] | None = None
    prompt_timeout: float = 60.0
    usb_timeout: float = 60.0
    reboot: bool = True
    poll_s: float = 0.5
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> MccDeployer:
        spec.only(*OPTIONS)
        mount_dir = spec.optional_path("mount_dir") or (
            spec.source.parent / "build" / "juno" / spec.board / "mcc"
        )
        storage = HostMassStorage(
            spec.board,
            mount_dir,
            spec.argv("mount", ("mount", DEVICE, DIRECTORY)),
            spec.argv("unmount", ("umount", DIRECTORY)),
        )
        images_txt = spec.get("images_txt", str, cls.images_txt)
        if images_txt.startswith("/") or ".." in Path(images_txt).parts:
            raise spec.error("images_txt", f"expected a path inside the card, got {images_txt!r}")
        return cls(
            spec.board,
            spec.get("console", str),
            storage,
            label=spec.get("label", str, "JUNO"),
            images_txt=images_txt,
            power_on=spec.argv("power_on", None),
            prompt_timeout=spec.get("prompt_timeout", float, 60.0),
            usb_timeout=spec.get("usb_timeout", float, 60.0),
            reboot=spec.get("reboot", bool, True),
        )

    def _fail(self, step: str, detail: str, console: MccConsole | None = None) -> InfraError:
        said = console.last_line() if console is not None else ""
        tail = f"; the MCC's last line: {said!r}" if said else ""
        return InfraError(f"board '{self.board}': MCC deploy: {step}: {detail}{tail}")

    def deploy(self, bundle: Path) -> None:
        verified = load_verified(self.board, bundle)
        files = self._files(verified)  # checked before the board is touched
        if self.power_on is not None:
            run_command(self.board, "MCC deploy: power on", self.power_on, 60)
        console = MccConsole(self.console)
        try:
            console.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise self._fail("open MCC console", f"{self.console}: {exc}") from exc
        try:
            self._prompt(console)
            self._command(console, "usb_on")
            device = self._wait_for_storage()
            self._copy_to(device, files, console)
            if self.reboot:
                try:
                    console.send("reboot\r")
                except (serial.SerialException, OSError) as exc:
                    raise self._fail("reboot", str(exc), console) from exc
        finally:
            console.close()

    def _files(self, bundle: Bundle) -> dict[str, Path]:
        """Card path -> bundle file: images.txt and every file it names."""
        if IMAGES_TXT not in bundle.files:
            raise self._fail("copy", f"bundle {bundle.directory} has no images.txt")
        listing = bundle.files[IMAGES_TXT]
        by_name = {path.name.lower(): path for path in bundle.files.values()}
        files = {self.images_txt: listing}
        for entry in NOR_FILE.findall(listing.read_text(errors="replace")):
            name = PureWindowsPath(entry.replace("/", "\\"))
            source = by_name.get(name.name.lower())
            if source is None:
                raise self._fail("copy", f"images.txt names {entry}, which the bundle lacks")
            files["/".join(name.parts[1:] if name.root else name.parts)] = source
        return files

    def _prompt(self, console: MccConsole) -> None:
        step = "interrupt autorun"
        try:
            console.send("\r")  # an MCC already at its prompt answers with a fresh one
            patterns = {"autoboot": AUTOBOOT, "prompt": PROMPT, "reset": IN_RESET}
            seen = console.expect(patterns, self.prompt_timeout)
            if seen == "autoboot":
                console.send("\r")
                seen = console.expect({"prompt": PROMPT, "reset": IN_RESET}, self.prompt_timeout)
        except (serial.SerialException, OSError) as exc:
            raise self._fail(step, str(exc), console) from exc
        if seen == "reset":
            raise self._fail(step, "the MCC says 'In reset': the interrupt came too late", console)
        if seen is None:
            raise self._fail(step, f"no 'Cmd>' prompt within {self.prompt_timeout:g} s", console)

    def _command(self, console: MccConsole, command: str) -> None:
        try:
            console.send(command + "\r")
            seen = console.expect({"prompt": PROMPT}, self.prompt_timeout)
        except (serial.SerialException, OSError) as exc:
            raise self._fail(command, str(exc), console) from exc
        if seen is None:
            raise self._fail(command, f"no 'Cmd>' within {self.prompt_timeout:g} s", console)

    def _wait_for_storage(self) -> Path:
        retrying = Retrying(
            stop=stop_after_delay(self.usb_timeout),
            wait=wait_fixed(self.poll_s),
            retry=retry_if_result(lambda device: device is None),
            sleep=self.sleep,
        )
        try:
            device = retrying(self.storage.find, self.label)
        except RetryError:
            device = None
        if device is None:
            raise self._fail(
                "wait for mass storage",
                f"no filesystem labelled {self.label!r} within {self.usb_timeout:g} s",
            )
        return device

    def _copy_to(self, device: Path, files: dict[str, Path], console: MccConsole) -> None:
        try:
            directory = self.storage.mount(device)
        except InfraError:
            raise
        except OSError as exc:
            raise self._fail("mount", f"{device}: {exc}") from exc
        try:
            for target, source in files.items():
                destination = directory / target
                try:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, destination)
                    with destination.open("rb+") as stream:
                        os.fsync(stream.fileno())
                except OSError as exc:
                    raise self._fail("copy", f"{target}: {exc}") from exc
            os.sync()  # the card is cut off from the host right after unmount
        except BaseException:
            with contextlib.suppress(OSError, InfraError):  # the first failure is the story
                self.storage.unmount(directory)
            raise
        try:
            self.storage.unmount(directory)
        except OSError as exc:
            raise self._fail("unmount", f"{directory}: {exc}") from exc


def deployer_from_spec(spec: BackendSpec) -> MccDeployer:
    return MccDeployer.from_spec(spec)


# -- bundles ---------------------------------------------------------------------------------------

BL1, HW_CONFIG, HW_CONFIG_DTS = "bl1", "hw_config", "hw_config_dts"
# NOR flash 0 (64 MiB, 256 KiB erase blocks) as the AP sees it, at V2M_FLASH0_BASE. The MCC writes
# what images.txt lists at these offsets: the FIP at the start (PLAT_ARM_FLASH_IMAGE_BASE), BL1
# where the trusted ROM is mapped (BL1_ROM_BYPASS_OFFSET) and, with Xen, dom0 in between, each on
# its own erase blocks. The FIP may grow up to dom0 (32 MiB: Xen is 1-2 MiB), dom0 up to BL1, BL1
# up to the last block (PLAT_ARM_MEM_PROT_ADDR, TF-A's PSCI MEM_PROTECT flag).
NOR_BASE = 0x08000000
FIP_OFFSET, DOM0_OFFSET, BL1_OFFSET, MEM_PROT_OFFSET = 0x0, 0x02000000, 0x03EC0000, 0x03FC0000
DOM0_ADDR = NOR_BASE + DOM0_OFFSET  # the physical address Xen copies dom0 from
HW_CONFIG_LIMIT = 0x8000  # PLAT_ARM_HW_CONFIG_SIZE of TF-A's Juno port
JUNO_DTS = FIRMWARE_DIR / "platform" / "juno" / "juno-r2.dts"
# Xen's part of its command line on this board; what the oracle must know comes from the bundle's
# XenOptions. The probe needs a few pages of dom0 RAM, and scrubbing 8 GB of free RAM would add
# seconds to every boot without changing what the FF-A mediator does.
BOARD_XEN_ARGS = (
    "console=dtuart",
    "dtuart=serial0",
    "dom0_mem=16M",
    "bootscrub=0",
    "loglvl=all",
    "guest_loglvl=all",
)


@dataclass(frozen=True)
class NorImage:
    """One images.txt entry: a bundle file the MCC writes at ``offset`` in NOR flash, which must
    end by ``limit`` (the next image's offset, or the end of the region it may use)."""

    name: str
    offset: int
    limit: int


FIRMWARE_ONLY = (
    NorImage("fip.bin", FIP_OFFSET, BL1_OFFSET),
    NorImage("bl1.bin", BL1_OFFSET, MEM_PROT_OFFSET),
)
WITH_XEN = (
    NorImage("fip.bin", FIP_OFFSET, DOM0_OFFSET),
    NorImage("probe.bin", DOM0_OFFSET, BL1_OFFSET),
    NorImage("bl1.bin", BL1_OFFSET, MEM_PROT_OFFSET),
)


def images_txt(images: Sequence[NorImage] = FIRMWARE_ONLY) -> str:
    """The MCC's image list for a hil bundle, DOS line ends as the MCC's own files have."""
    lines = [
        "TITLE: Versatile Express Images Configuration File",
        "[IMAGES]",
        f"TOTALIMAGES: {len(images)}",
    ]
    for n, image in enumerate(images):
        lines += [
            f"NOR{n}UPDATE: AUTO",
            f"NOR{n}ADDRESS: {image.offset:#010x}",
            f"NOR{n}FILE: \\SOFTWARE\\{image.name}",
            f"NOR{n}LOAD: 00000000",
            f"NOR{n}ENTRY: 00000000",
        ]
    return "\r\n".join(lines) + "\r\n"


def nor_overflow(images: Sequence[NorImage], sizes: Mapping[str, int]) -> str | None:
    """What does not fit its NOR slot (one clause), or None."""
    for image in images:
        size = sizes[image.name]
        if image.offset + size > image.limit:
            return (
                f"{image.name} is {size} bytes, more than its {image.limit - image.offset:#x}-byte "
                f"NOR slot at {NOR_BASE + image.offset:#010x}"
            )
    return None


def xen_dts(options: XenOptions, dom0_size: int) -> str:
    """hil's Juno r2 device tree with Xen's /chosen: its command line and dom0 (the probe) as a
    module at its NOR address.

    Xen finds both where TF-A and the MCC leave them, with no loader (Xen 4.22 source):
    ``start_xen`` (arch/arm/setup.c) maps the FDT at the address in x0 with ``early_fdt_map``
    (arch/arm/mmu/setup.c: any physical address, 8-byte aligned = ``MIN_FDT_ALIGN`` of
    include/xen/bootfdt.h, at most ``MAX_FDT_SIZE`` 2 MB) and later copies it into its heap
    (``relocate_fdt``); BL31 puts HW_CONFIG's address (0x82000000, DRAM) in x0 when built with
    ARM_LINUX_KERNEL_AS_BL33 (TF-A plat/arm/common/arm_bl31_setup.c). The dom0 module is read in
    place: ``kernel_probe`` (common/device-tree/kernel.c) reads its header with
    ``copy_from_paddr`` (arch/arm/mmu/setup.c: a fixmap of any physical page) and
    ``kernel_zimage_load`` (arch/arm/kernel.c) copies it into dom0's RAM through ``ioremap_wc``,
    so NOR flash at 0x0a000000 serves; ``discard_initial_modules`` (arch/arm/setup.c) skips
    modules that are not RAM (``mfn_valid``), so the flash is never given to the heap."""
    xen_args = xen_command_line(BOARD_XEN_ARGS, options)
    return JUNO_DTS.read_text() + chosen_dts(xen_args, DOM0_ADDR, dom0_size)


def _scp_bl2(board: BoardConfig) -> Path:
    """The lab's SCP firmware for ``board``, or one ConfigError line naming the field."""
    where = f"{display_path(board.source)}: board '{board.name}'"
    if board.scp_bl2 is None:
        raise ConfigError(
            f"{where}: field 'scp_bl2': missing: the Juno's SCP firmware (scp_bl2.bin from Arm, "
            "not redistributable) goes into its FIP"
        )
    if not board.scp_bl2.is_file():
        raise ConfigError(f"{where}: field 'scp_bl2': {board.scp_bl2} is not a file")
    return board.scp_bl2


_builds: dict[tuple[Path, Path], Firmware] = {}


def juno_firmware(board: BoardConfig) -> Firmware:
    """The Juno test firmware with the lab's SCP firmware in its FIP, built once per process."""
    scp = _scp_bl2(board).resolve()
    key = (default_build_dir().resolve(), scp)
    if key not in _builds:
        try:
            _builds[key] = build_firmware(toolchain.locate(), key[0], platform=JUNO, scp_bl2=scp)
        except (toolchain.ToolchainError, BuildError) as exc:
            raise InfraError(f"board '{board.name}': firmware: {exc}") from exc
    return _builds[key]


def prepare(board: BoardConfig) -> None:
    """Check the board's SCP firmware, build the Juno firmware and the board's Xen (when it has
    one), and check that Xen fits the FIP's NOR slot, before the first case."""
    fw = juno_firmware(board)
    xen = board_xen(board)
    if xen is None:
        return
    try:
        with tempfile.TemporaryDirectory(prefix="juno-xen-") as staging:
            # The FIP of every scenario but for the scenario's blobs, which change no size.
            out = Path(staging)
            _, dtb = _xen_hw_config(fw, xen, fw.probe.path.stat().st_size, out)
            fip = out / "fip.bin"
            shutil.copyfile(fw.tfa.fip, fip)
            update = [fw.tfa.fiptool, "update", "--nt-fw", xen.image, "--hw-config", dtb, fip]
            run_logged(update, out / "images.log", "fiptool")
            overflow = nor_overflow(WITH_XEN[:1], {"fip.bin": fip.stat().st_size})
    except (toolchain.ToolchainError, BuildError, OSError) as exc:
        raise InfraError(f"board '{board.name}': firmware: {exc}") from exc
    if overflow is not None:
        raise _xen_too_big(board, xen, overflow)


def _xen_too_big(board: BoardConfig, xen: XenImage, overflow: str) -> ConfigError:
    field = "xen_src" if board.xen_src is not None else "xen_image"
    where = f"{display_path(board.source)}: board '{board.name}': field '{field}'"
    return ConfigError(f"{where}: Xen ({xen.image.stat().st_size} bytes) in the FIP: {overflow}")


def _xen_hw_config(fw: Firmware, xen: XenImage, dom0_size: int, out: Path) -> tuple[Path, Path]:
    """hil's Juno DTS with Xen's /chosen for a dom0 of ``dom0_size`` bytes, and its DTB (the
    FIP's HW_CONFIG), in ``out``."""
    dts, dtb = out / "juno-xen.dts", out / "juno-xen.dtb"
    dts.write_text(xen_dts(xen.options, dom0_size))
    run_logged(
        [fw.toolchain.dtc, "-I", "dts", "-O", "dtb", "-o", dtb, dts], out / "images.log", "dtc"
    )
    if dtb.stat().st_size > HW_CONFIG_LIMIT:
        raise BuildError(f"{dtb}: larger than HW_CONFIG's {HW_CONFIG_LIMIT:#x} bytes")
    return dts, dtb


def build_images(
    fw: Firmware, scenario: Scenario, out: Path, xen: XenImage | None
) -> tuple[dict[str, Path], tuple[NorImage, ...]]:
    """The scenario's Juno images in ``out`` and the NOR layout images.txt gives them. Without
    Xen the probe is BL33 in the FIP; with Xen, Xen is BL33, hil's DTB with Xen's /chosen is
    HW_CONFIG and the probe goes to NOR flash as dom0."""
    if xen is None:
        images = scenario_images(fw, scenario, out, "--nt-fw", out / "probe.bin")
        layout = FIRMWARE_ONLY
    else:
        # Patched here for its size (the dom0 module); scenario_images writes the same bytes.
        probe = fw.probe.patched(scenario.probe_plan().encode(), out / "probe.bin")
        dts, dtb = _xen_hw_config(fw, xen, probe.stat().st_size, out)
        images = scenario_images(fw, scenario, out, "--nt-fw", xen.image, "--hw-config", dtb)
        images.update({XEN: xen.image, HW_CONFIG: dtb, HW_CONFIG_DTS: dts})
        if xen.config is not None:  # the .config of a Xen hil built, as QEMU bundles keep it
            images[XEN_CONFIG] = xen.config
        layout = WITH_XEN
    listing = out / "images.txt"
    listing.write_text(images_txt(layout), newline="")
    images.update({BL1: fw.tfa.bl1, IMAGES_TXT: listing})
    return images, layout


def bundle(scenario: Scenario, board: BoardConfig, directory: Path) -> Bundle:
    """The bundle of a juno-r2 board for ``scenario``: BL1, the FIP (SCP firmware, the test
    SPMC with the scenario and its manifest, BL33: the probe or the board's Xen, with Xen hil's
    DTB as HW_CONFIG), the probe as Xen's dom0 in NOR, and images.txt. An image too big for its
    NOR slot is one line: ConfigError naming the Xen field when Xen made the FIP too big."""
    fw = juno_firmware(board)
    xen = board_xen(board)
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="images-", dir=directory.parent) as staging:
            out = Path(staging)
            images, layout = build_images(fw, scenario, out, xen)
            sizes = {path.name: path.stat().st_size for path in images.values()}
            overflow = nor_overflow(layout, sizes)
            if overflow is not None and xen is not None and overflow.startswith("fip.bin"):
                raise _xen_too_big(board, xen, overflow)  # prepare() says so before a case
            if overflow is not None:
                raise BuildError(overflow)
            options, facts = (xen.options, xen.facts) if xen else (None, None)
            return write_bundle(scenario, board.type.name, directory, images, options, facts)
    except (toolchain.ToolchainError, BuildError, OSError) as exc:
        raise InfraError(f"board '{board.name}': firmware: {exc}") from exc
