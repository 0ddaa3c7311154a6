"""Per-scenario firmware bundle for a board: patched images, repacked FIP, ``bundle.json``.

The expensive builds (:func:`hil.firmware.build.build_firmware`) happen once; a bundle only
writes the scenario blob into the SPMC image's window and the probe plan into the probe's
window, compiles the SPMC manifest and repacks the FIP with ``fiptool update`` (well under 1 s).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from hil.firmware.build import BuildError, Firmware, run_logged
from hil.firmware.manifest import manifest_dts

SPMC_MAGIC = b"HILSPMC1"
PLAN_MAGIC = b"HILPRB01"
BIOS_FIP_OFFSET = 0x40000  # qemu_fw.bios = bl1.bin, then the FIP at 256 KiB (plat/qemu)
BOARDS = ("qemu-virt",)


@dataclass(frozen=True)
class Bundle:
    """What a board needs to boot one scenario. Paths are inside :attr:`directory`."""

    directory: Path
    board: str
    bios: Path
    """qemu_fw.bios (BL1 + FIP) for ``-bios``."""
    probe: Path
    """The probe with its plan: BL33 inside the FIP, or Xen's dom0 module when :attr:`xen`."""
    xen: Path | None
    """Xen image used as BL33 (path A in qemu-stack.md §3), or None to run the probe as BL33."""


def _check_magic(name: str, blob: bytes, magic: bytes) -> None:
    if blob[: len(magic)] != magic:
        raise ValueError(f"{name}: expected magic {magic.decode()!r}, got {blob[:8]!r}")


def _rel(path: Path, base: Path) -> str:
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_bundle(
    fw: Firmware,
    out_dir: Path,
    spmc_blob: bytes,
    probe_plan: bytes,
    board: str = "qemu-virt",
    xen: Path | None = None,
) -> Bundle:
    """Write the bundle for one scenario into ``out_dir`` (created; existing files replaced)."""
    if board not in BOARDS:
        raise ValueError(f"board {board!r}: firmware bundles can be built for {', '.join(BOARDS)}")
    _check_magic("spmc blob", spmc_blob, SPMC_MAGIC)
    _check_magic("probe plan", probe_plan, PLAN_MAGIC)
    out_dir.mkdir(parents=True, exist_ok=True)
    tc = fw.toolchain

    blob_path = out_dir / "spmc.blob"
    blob_path.write_bytes(spmc_blob)
    plan_path = out_dir / "probe.plan"
    plan_path.write_bytes(probe_plan)
    spmc = fw.spmc.patched(spmc_blob, out_dir / "spmc.bin")
    probe = fw.probe.patched(probe_plan, out_dir / "probe.bin")

    dts = out_dir / "spmc_manifest.dts"
    dts.write_text(manifest_dts(int.from_bytes(spmc_blob[8:12], "little")))
    dtb = out_dir / "spmc_manifest.dtb"
    log = out_dir / "bundle.log"
    log.unlink(missing_ok=True)
    run_logged([tc.dtc, "-I", "dts", "-O", "dtb", "-o", dtb, dts], log, "dtc")

    fip = out_dir / "fip.bin"
    shutil.copyfile(fw.tfa.fip, fip)
    nt_fw = xen or probe
    update = [fw.tfa.fiptool, "update", "--tos-fw", spmc, "--tos-fw-config", dtb]
    run_logged([*update, "--nt-fw", nt_fw, fip], log, "fiptool")

    bios = out_dir / "qemu_fw.bios"
    bl1 = fw.tfa.bl1.read_bytes()
    if len(bl1) > BIOS_FIP_OFFSET:
        raise BuildError(f"{fw.tfa.bl1}: BL1 is larger than {BIOS_FIP_OFFSET:#x} bytes")
    bios.write_bytes(bl1.ljust(BIOS_FIP_OFFSET, b"\0") + fip.read_bytes())

    files = {
        "spmc.blob": blob_path,
        "probe.plan": plan_path,
        "spmc.bin": spmc,
        "probe.bin": probe,
        "spmc_manifest.dts": dts,
        "spmc_manifest.dtb": dtb,
        "fip.bin": fip,
        "qemu_fw.bios": bios,
    }
    if xen is not None:
        files["xen"] = xen
    index = {
        "board": board,
        "bl33": "xen" if xen else "probe",
        "windows": {
            "spmc.bin": {"offset": fw.spmc.window_offset, "size": fw.spmc.window_size},
            "probe.bin": {"offset": fw.probe.window_offset, "size": fw.probe.window_size},
        },
        "files": {
            name: {"path": _rel(p, out_dir), "sha256": _sha256(p)} for name, p in files.items()
        },
    }
    (out_dir / "bundle.json").write_text(json.dumps(index, indent=2) + "\n")
    return Bundle(directory=out_dir, board=board, bios=bios, probe=probe, xen=xen)
