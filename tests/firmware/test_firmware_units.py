"""Fast checks of hil.firmware / hil.emulator that need no emulator run."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hil.boards.qemu import QemuBoard
from hil.emulator.qemu import Loader, QemuConfig, QemuVirt
from hil.emulator.xen_boot import DOM0_ADDR, initrd_addr, xen_command_line, xen_dtb
from hil.errors import InfraError
from hil.firmware import toolchain
from hil.firmware.build import BuildError, PatchableImage, run_logged
from hil.firmware.manifest import manifest_dts, manifest_version
from hil.lab import load_lab
from hil.session import BoardSession
from hil.xen.oracle import XenOptions
from tests.firmware.conftest import SKIP_REASON
from tests.firmware.test_qemu_run import qemu_lab


def test_missing_tfa_source_names_the_setup_script(tmp_path: Path) -> None:
    with pytest.raises(toolchain.ToolchainError) as info:
        toolchain.locate(tmp_path / "no-tf-a")
    message = str(info.value)
    assert "\n" not in message
    assert f"TF-A source ({tmp_path / 'no-tf-a'})" in message
    assert message.endswith("run scripts/setup-system.sh")


def test_tfa_source_follows_hil_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HIL_CACHE", str(tmp_path))
    assert toolchain.default_tfa_src() == tmp_path / "tf-a-2.12.1"


def test_patched_image_writes_only_the_window(tmp_path: Path) -> None:
    base = tmp_path / "image.bin"
    base.write_bytes(bytes(range(16)) * 4)
    image = PatchableImage(base, window_offset=16, window_size=8)
    out = image.patched(b"\xaa\xbb", tmp_path / "out.bin").read_bytes()
    assert out[16:18] == b"\xaa\xbb"
    assert out[:16] + out[18:] == base.read_bytes()[:16] + base.read_bytes()[18:]
    with pytest.raises(ValueError, match="9 bytes exceeds the 8-byte window at 0x10"):
        image.patched(bytes(9), tmp_path / "too-big.bin")


@pytest.mark.parametrize(
    ("word", "declared"),
    [(0x00010001, (1, 1)), (0x00010002, (1, 2)), (0x00010000, (1, 1)), (0x00020000, (1, 1))],
)
def test_manifest_declares_a_version_the_spmd_forwards(
    word: int, declared: tuple[int, int]
) -> None:
    assert manifest_version(word) == declared
    assert f"min_ver = <{declared[1]:#x}>;" in manifest_dts(word)


def test_qemu_argv_has_no_network_and_both_uarts_on_loopback(tmp_path: Path) -> None:
    config = QemuConfig(
        bios=tmp_path / "bios", dtb=tmp_path / "x.dtb", loaders=(Loader(tmp_path / "d", 0x1000),)
    )
    machine = QemuVirt(config, tmp_path)
    machine.ns_port, machine.secure_port = 4000, 4001
    argv = machine.argv()
    assert argv[argv.index("-nic") + 1] == "none"
    serials = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-serial"]
    assert serials == [
        "tcp:127.0.0.1:4000,server=on,wait=off",
        "tcp:127.0.0.1:4001,server=on,wait=off",
    ]
    assert {"-no-reboot", "-S"} <= set(argv)
    assert f"loader,file={tmp_path / 'd'},addr=0x1000,force-raw=on" in argv
    assert machine.ns_uart_url == "socket://127.0.0.1:4000"
    machine.close()


@pytest.mark.qemu
def test_xen_dtb_describes_the_dom0_module(tmp_path: Path) -> None:
    if toolchain.missing() or shutil.which("fdtget") is None:
        pytest.skip(SKIP_REASON)
    dom0 = tmp_path / "probe.bin"
    dom0.write_bytes(bytes(0x1234))
    args = xen_command_line(XenOptions(dom0_vcpus=2))
    dtb = xen_dtb(toolchain.locate().qemu, tmp_path / "xen.dtb", dom0, 2, 2048, args)

    def get(node: str, prop: str, kind: str = "s") -> str:
        argv = ["fdtget", "-t", kind, str(dtb), node, prop]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()

    module = f"/chosen/module@{DOM0_ADDR:x}"
    assert get(module, "reg", "x").split() == ["0", f"{DOM0_ADDR:x}", "0", "1234"]
    assert get(module, "compatible").split() == ["multiboot,kernel", "multiboot,module"]
    bootargs = get("/chosen", "xen,xen-bootargs").split()
    assert "dtuart=/pl011@9000000" in bootargs
    # Xen would give dom0 one vCPU per CPU without it; the oracle reads the same options.
    assert "dom0_max_vcpus=2" in bootargs
    # The probe has no initramfs: one module only.
    listing = subprocess.run(["fdtget", "-l", str(dtb), "/chosen"], capture_output=True, text=True)
    assert listing.stdout.split() == [f"module@{DOM0_ADDR:x}"]


@pytest.mark.qemu
def test_xen_dtb_gives_an_initramfs_its_own_ramdisk_module_after_the_kernel(tmp_path) -> None:
    if toolchain.missing() or shutil.which("fdtget") is None:
        pytest.skip(SKIP_REASON)
    kernel, initrd = tmp_path / "Image", tmp_path / "initramfs.cpio"
    kernel.write_bytes(bytes(0x200001))  # one byte past 2 MB: the ramdisk starts at 4 MB
    initrd.write_bytes(bytes(0x1000))
    qemu = toolchain.locate().qemu
    dtb = xen_dtb(qemu, tmp_path / "xen.dtb", kernel, 2, 2048, "x", "console=hvc0", initrd)
    assert initrd_addr(0x200001) == DOM0_ADDR + 0x400000

    def get(node: str, prop: str, kind: str = "s") -> str:
        argv = ["fdtget", "-t", kind, str(dtb), node, prop]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()

    ramdisk = f"/chosen/module@{DOM0_ADDR + 0x400000:x}"
    assert get(ramdisk, "reg", "x").split() == ["0", f"{DOM0_ADDR + 0x400000:x}", "0", "1000"]
    assert get(ramdisk, "compatible").split() == ["multiboot,ramdisk", "multiboot,module"]
    assert get(f"/chosen/module@{DOM0_ADDR:x}", "reg", "x").split()[3] == "200001"


def test_failed_build_step_names_the_tool_and_its_log(tmp_path: Path) -> None:
    log = tmp_path / "step.log"
    with pytest.raises(BuildError) as info:
        run_logged(["sh", "-c", "echo boom; exit 3"], log, "make (TF-A)")
    assert str(info.value) == f"make (TF-A) failed with exit code 3; see {log}"
    assert "boom" in log.read_text()


def test_missing_tools_name_the_board_and_the_setup_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(toolchain, "missing", lambda: ["qemu-system-aarch64"])
    board = load_lab(qemu_lab(tmp_path)).board("qemu0")
    with pytest.raises(InfraError) as info, BoardSession(board, tmp_path / "s"):
        pass
    assert str(info.value) == (
        "board 'qemu0': missing qemu-system-aarch64: run scripts/setup-system.sh"
    )


def _fake_qemu_board(tmp_path: Path, then: str) -> QemuBoard:
    """A QEMU board whose 'QEMU' says it waits for its consoles, then runs ``then`` (sh)."""
    fake = tmp_path / "fake-qemu"
    fake.write_text(f"#!/bin/sh\necho 'QEMU waiting for connection on: tcp'\n{then}\n")
    fake.chmod(0o755)
    board = QemuBoard("q0", tmp_path / "work")
    board.qemu, board.ports = fake, (1, 2)
    board.config = lambda: QemuConfig(bios=tmp_path / "bios", qemu=fake)  # type: ignore[method-assign]
    return board


def test_a_qemu_stopped_once_its_case_is_done_is_not_said_to_have_died(tmp_path: Path) -> None:
    # hil kills QEMU when the case's consoles are closed (its teardown overlaps the judging): an
    # infra error of that case must not blame the board for an exit hil caused.
    board = _fake_qemu_board(tmp_path, "exec sleep 30")
    board.power_on()
    pid = board._machine.pid if board._machine else None
    board.case_done()
    assert board.failure() is None
    board.power_off()
    assert pid is not None and not Path(f"/proc/{pid}").exists()  # reaped, not a zombie
    # One that exited on its own before the case was done still says so.
    board = _fake_qemu_board(tmp_path, "sleep 0.3; exit 1")
    board.power_on()
    deadline = time.monotonic() + 10
    while board._machine is not None and board._machine.running and time.monotonic() < deadline:
        time.sleep(0.01)
    board.case_done()
    assert board.failure() == f"QEMU exited; see {tmp_path / 'work' / 'qemu.log'}"
    board.close()
