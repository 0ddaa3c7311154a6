"""Build the test SPMC, the probe and TF-A (``all fip``), cached by the sha256 of their inputs.

Each artefact goes to ``<build_dir>/<name>-<hash>/``; a directory that exists is a finished
build (builds run in a temporary directory that is renamed into place), so a second call, or a
concurrent one from another test worker, costs only the hashing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.firmware.manifest import manifest_dts
from hil.firmware.toolchain import Toolchain

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"

# TF-A configuration for an S-EL1 SPMC under the SPMD on QEMU virt with GICv3
# (see shared/reference/qemu-stack.md §2). ARM_LINUX_KERNEL_AS_BL33 makes BL2 pass the DTB in x0,
# which Xen needs as BL33 and the probe ignores.
TFA_FLAGS = (
    "PLAT=qemu",
    "QEMU_USE_GIC_DRIVER=QEMU_GICV3",
    "SPD=spmd",
    "SPMD_SPM_AT_SEL2=0",
    "CTX_INCLUDE_EL2_REGS=0",
    "ARM_LINUX_KERNEL_AS_BL33=1",
)
DEFAULT_FFA_VERSION = 0x00010001


@dataclass(frozen=True)
class Platform:
    """How the test firmware is built for one platform: ``name`` selects
    firmware/platform/<name>/platform.h (the addresses the SPMC and probe use) and TF-A's
    ``PLAT``; ``tfa_flags`` are its TF-A make variables, ``manifest_var`` the one naming the SPMC
    manifest, ``spmc_base`` TF-A's BL32 base (the manifest's load address), ``bl33_in_fip``
    whether BL33 is packed into the FIP (else it is preloaded by the platform's loader),
    ``patch`` a file of firmware/tf-a/ applied to TF-A's source first, ``needs_scp`` whether the
    FIP carries SCP firmware (the lab's: it is not redistributable)."""

    name: str
    tfa_flags: tuple[str, ...]
    manifest_var: str
    spmc_base: int
    bl33_in_fip: bool = True
    patch: str | None = None
    needs_scp: bool = False


QEMU = Platform("qemu", TFA_FLAGS, "QEMU_TOS_FW_CONFIG_DTS", 0x0E100000)
# FVP Base RevC: the S-EL1 test SPMC under the SPMD; BL33 (Xen, or the probe) is preloaded by
# the model (--data) at PRELOADED_BL33_BASE and gets HW_CONFIG (the FIP's DTB) in x0.
FVP_BL33_BASE = 0x84000000
FVP = Platform(
    "fvp",
    (
        "PLAT=fvp",
        "SPD=spmd",
        "SPMD_SPM_AT_SEL2=0",
        "CTX_INCLUDE_EL2_REGS=0",
        "ARM_LINUX_KERNEL_AS_BL33=1",
        f"PRELOADED_BL33_BASE={FVP_BL33_BASE:#x}",
    ),
    "ARM_SPMC_MANIFEST_DTS",
    0x06000000,
    bl33_in_fip=False,
)
# Juno r2: TF-A 2.12.1 has no SPMD support for Juno; firmware/tf-a/juno-spmd.patch adds it, and
# lets ARM_LINUX_KERNEL_AS_BL33 make BL31 pass BL33 the HW_CONFIG DTB's address in x0 (Xen needs
# it; the probe ignores x0, as on QEMU): one TF-A build serves both BL33s.
JUNO_HW_CONFIG_BASE = 0x82000000  # hw-config load-address in TF-A's juno_fw_config.dts
JUNO = Platform(
    "juno",
    (
        "PLAT=juno",
        "SPD=spmd",
        "SPMD_SPM_AT_SEL2=0",
        "CTX_INCLUDE_EL2_REGS=0",
        "ARM_LINUX_KERNEL_AS_BL33=1",
    ),
    "ARM_SPMC_MANIFEST_DTS",
    0xFF200000,
    patch="juno-spmd.patch",
    needs_scp=True,
)
PLATFORMS = {p.name: p for p in (QEMU, FVP, JUNO)}


def default_build_dir() -> Path:
    """Where built firmware is cached: ``$HIL_BUILD_DIR`` or ``build/firmware`` in the checkout."""
    configured = os.environ.get("HIL_BUILD_DIR")
    return Path(configured) if configured else FIRMWARE_DIR.parent / "build" / "firmware"


class BuildError(RuntimeError):
    """A build step failed; the message names the tool and its log file."""


@dataclass(frozen=True)
class PatchableImage:
    """A raw image with a zero-filled window that a bundle fills with a per-scenario blob."""

    path: Path
    window_offset: int
    window_size: int

    def patched(self, blob: bytes, out: Path) -> Path:
        """Write a copy of the image with ``blob`` at the window to ``out``."""
        if len(blob) > self.window_size:
            raise ValueError(
                f"{self.path.name}: blob of {len(blob)} bytes exceeds the "
                f"{self.window_size}-byte window at {self.window_offset:#x}"
            )
        data = bytearray(self.path.read_bytes())
        data[self.window_offset : self.window_offset + len(blob)] = blob
        out.write_bytes(bytes(data))
        return out


@dataclass(frozen=True)
class TfaBuild:
    """Outputs of a TF-A ``all fip`` build (``bios`` only for PLAT=qemu, ``hw_config`` the
    platform's DTB that TF-A builds, where it has one)."""

    bl1: Path
    fip: Path
    bios: Path
    fiptool: Path
    hw_config: Path | None = None


@dataclass(frozen=True)
class Firmware:
    """Everything built once per session; bundles derive per-scenario images from it."""

    toolchain: Toolchain
    spmc: PatchableImage
    probe: PatchableImage
    tfa: TfaBuild
    platform: Platform = QEMU


def digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:16]


def _tree_parts(*dirs: Path) -> list[bytes]:
    parts: list[bytes] = []
    for d in dirs:
        for f in sorted(p for p in d.rglob("*") if p.is_file()):
            parts += [str(f.relative_to(d.parent)).encode(), f.read_bytes()]
    return parts


def run_logged(argv: Sequence[str | Path], log: Path, tool: str, cwd: Path | None = None) -> None:
    with log.open("ab") as out:
        out.write(("$ " + " ".join(map(str, argv)) + "\n").encode())
        out.flush()
        result = subprocess.run(
            [str(a) for a in argv], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise BuildError(f"{tool} failed with exit code {result.returncode}; see {log}")


def tool_version(tc: Toolchain) -> bytes:
    return subprocess.run([str(tc.gcc), "--version"], capture_output=True, check=True).stdout


def cached_build(build_dir: Path, name: str, key: str, build: Callable[[Path, Path], None]) -> Path:
    """Return ``<build_dir>/<name>-<key>``, running ``build(tmpdir, log)`` first if it is missing.

    The log lives beside the directory (``<name>-<key>.log``) so it survives a failed build.
    """
    build_dir = build_dir.resolve()  # make runs with -C: relative paths would break
    final = build_dir / f"{name}-{key}"
    if final.is_dir():
        return final
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / f"{name}-{key}.log"
    log.unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=build_dir))
    try:
        build(tmp, log)
        try:
            tmp.rename(final)
        except OSError:
            if not final.is_dir():  # not a concurrent builder winning the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _symbols(tc: Toolchain, elf: Path) -> dict[str, int]:
    out = subprocess.run([str(tc.nm), str(elf)], capture_output=True, text=True, check=True)
    table: dict[str, int] = {}
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3:
            table[fields[2]] = int(fields[0], 16)
    return table


def _build_image(
    tc: Toolchain, build_dir: Path, name: str, subdir: str, window: str, platform: Platform
) -> PatchableImage:
    src = FIRMWARE_DIR / subdir
    plat_dir = FIRMWARE_DIR / "platform" / platform.name
    key = digest([*_tree_parts(FIRMWARE_DIR / "common", src, plat_dir), tool_version(tc)])

    def build(out: Path, log: Path) -> None:
        argv = [tc.make, "-C", src, f"O={out}", f"CROSS_COMPILE={tc.cross_compile}"]
        run_logged([*argv, f"PLATFORM={platform.name}"], log, f"make ({subdir})", cwd=src)

    cache_name = name if platform is QEMU else f"{name}-{platform.name}"
    out = cached_build(build_dir, cache_name, key, build)
    sym = _symbols(tc, out / f"{name}.elf")
    start, end = sym[f"__{window}_start"], sym[f"__{window}_end"]
    return PatchableImage(out / f"{name}.bin", start - sym["_start"], end - start)


def build_spmc(tc: Toolchain, build_dir: Path, platform: Platform = QEMU) -> PatchableImage:
    """Build firmware/test-spmc for ``platform``; its window takes the scenario blob."""
    return _build_image(tc, build_dir, "spmc", "test-spmc", "scenario", platform)


def build_probe(tc: Toolchain, build_dir: Path, platform: Platform = QEMU) -> PatchableImage:
    """Build firmware/probe for ``platform``; its window takes the probe plan blob."""
    return _build_image(tc, build_dir, "probe", "probe", "plan", platform)


def _tfa_source_id(src: Path) -> bytes:
    # The tree is a pinned Debian source package: its changelog head names the exact version.
    return (src / "debian" / "changelog").read_bytes()[:200] + str(src).encode()


def _tfa_build_string(src: Path) -> str:
    """``debian-<version>`` from the changelog head, e.g. ``debian-2.12.1+dfsg-1``.

    Without BUILD_STRING TF-A runs ``git describe``, which would pick up whatever repository
    the build directory happens to sit in.
    """
    head = (src / "debian" / "changelog").read_text().split("\n", 1)[0]
    return "debian-" + head.partition("(")[2].partition(")")[0]


def build_tfa(
    tc: Toolchain,
    build_dir: Path,
    bl32: Path,
    bl33: Path | None,
    manifest_dts_text: str,
    platform: Platform = QEMU,
    scp_bl2: Path | None = None,
) -> TfaBuild:
    """Build TF-A ``all fip`` for ``platform`` with the SPMD, ``bl32`` as SPMC, ``bl33`` as NS
    image (None where the platform preloads BL33).

    The source is copied first, because the build also compiles fiptool inside the source tree.
    """
    bl32 = bl32.resolve()
    bl33 = bl33.resolve() if platform.bl33_in_fip and bl33 is not None else None
    if platform.needs_scp and scp_bl2 is None:
        raise BuildError(f"TF-A PLAT={platform.name} needs SCP firmware (SCP_BL2)")
    scp = scp_bl2.resolve() if platform.needs_scp and scp_bl2 is not None else None
    patch = FIRMWARE_DIR / "tf-a" / platform.patch if platform.patch else None
    # Every make variable that is not a path to a hashed input is part of the key.
    config = [*platform.tfa_flags, f"BUILD_STRING={_tfa_build_string(tc.tfa_src)}"]
    key = digest(
        [
            _tfa_source_id(tc.tfa_src),
            tool_version(tc),
            " ".join(config).encode(),
            bl32.read_bytes(),
            bl33.read_bytes() if bl33 is not None else b"",
            manifest_dts_text.encode(),
            scp.read_bytes() if scp is not None else b"",
            patch.read_bytes() if patch is not None else b"",
        ]
    )

    def build(out: Path, log: Path) -> None:
        src = out / "src"
        shutil.copytree(tc.tfa_src, src, symlinks=True)
        if patch is not None:
            run_logged(["patch", "-p1", "-i", patch], log, f"patch ({patch.name})", cwd=src)
        manifest = out / "spmc_manifest.dts"
        manifest.write_text(manifest_dts_text)
        argv = [
            tc.make, "-C", src, f"-j{os.cpu_count() or 1}", f"CROSS_COMPILE={tc.cross_compile}",
            *config, f"BUILD_BASE={out / 'out'}", f"BL32={bl32}",
            *([f"BL33={bl33}"] if bl33 is not None else []),
            *([f"SCP_BL2={scp}"] if scp is not None else []),
            f"{platform.manifest_var}={manifest}", f"DTC={tc.dtc}", "all", "fip",
        ]  # fmt: skip
        run_logged(argv, log, f"make (TF-A PLAT={platform.name})")

    out = cached_build(
        build_dir, "tf-a" if platform is QEMU else f"tf-a-{platform.name}", key, build
    )
    rel = out / "out" / platform.name / "release"
    hw_config = rel / "fdts" / "fvp-base-gicv3-psci.dtb"
    return TfaBuild(
        bl1=rel / "bl1.bin",
        fip=rel / "fip.bin",
        bios=rel / "qemu_fw.bios",
        fiptool=out / "src" / "tools" / "fiptool" / "fiptool",
        hw_config=hw_config if hw_config.is_file() else None,
    )


def build_firmware(
    tc: Toolchain,
    build_dir: Path,
    bl33: Path | None = None,
    platform: Platform = QEMU,
    scp_bl2: Path | None = None,
) -> Firmware:
    """Build SPMC, probe and TF-A for ``platform``. ``bl33`` defaults to the probe; pass a Xen
    image to boot Xen.

    The images inside the FIP carry empty windows; bundles repack the FIP per scenario.
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    # One builder at a time per build dir: parallel test workers and hil runs share the cache.
    with (build_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        spmc = build_spmc(tc, build_dir, platform)
        probe = build_probe(tc, build_dir, platform)
        manifest = manifest_dts(DEFAULT_FFA_VERSION, platform.spmc_base)
        bl33 = bl33 or probe.path
        tfa = build_tfa(tc, build_dir, spmc.path, bl33, manifest, platform, scp_bl2)
    return Firmware(toolchain=tc, spmc=spmc, probe=probe, tfa=tfa, platform=platform)
