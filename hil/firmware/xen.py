"""Build the arm64 Xen hypervisor with the FF-A mediator from a lab's ``xen_src``: a Xen source
tree, or a ``.tar.xz`` / ``.tar.gz`` of one (``../shared/xen/README.md`` gives the recipe).

``defconfig``, then ``CONFIG_UNSUPPORTED=y CONFIG_FFA=y`` and the lab's extra Kconfig lines,
``olddefconfig``, a check that every requested line survived it (Kconfig silently drops an option
whose dependencies are unmet, and a Xen built without the mediator would boot and fail every check
for the wrong reason), then ``make``. Like the other firmware builds the result is cached under
the build directory by the sha256 of its inputs (source bytes, Kconfig lines, compiler, recipe),
in ``xen-<key>/`` holding ``xen`` (the image), ``xen.config`` (the ``.config`` used) and
``build.json`` (version and provenance); the source copy and objects are deleted.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.bundle import sha256_file
from hil.firmware.build import BuildError, cached_build, digest, run_logged, tool_version
from hil.firmware.toolchain import Toolchain
from hil.xen.kconfig import check_assignment, read_kconfig

ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz")
REQUIRED_KCONFIG = ("CONFIG_UNSUPPORTED=y", "CONFIG_FFA=y")
# Part of the cache key: change it when the recipe below changes what a build produces.
RECIPE = "hil-xen-1"
# Who built it, as Xen's banner prints it: fixed, so images do not carry the CI host's user.
IDENTITY = ("XEN_WHOAMI=hil", "XEN_DOMAIN=hil", "XEN_BUILD_HOST=hil")
BUILD_INFO = "build.json"
# Xen links its .config into the image, gzipped (xen/common/config_data.S, with CONFIG_HYPFS_CONFIG
# which defaults to y): a prebuilt image says how it was built. The text starts like this.
GZIP_MAGIC = b"\x1f\x8b\x08"
CONFIG_START = b"#\n# Automatically generated file; DO NOT EDIT.\n# Xen/"
CONFIG_VERSION = re.compile(r"# Xen/\S+ (\S+) Configuration")
MAX_CONFIG = 1 << 20


class XenSourceError(ValueError):
    """``xen_src`` is not a Xen source tree / archive, or it cannot enable the FF-A mediator."""


def is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def _is_xen_root(path: Path) -> bool:
    return (path / "xen" / "Makefile").is_file() and (path / "xen" / "arch" / "arm").is_dir()


def _source_root(top: Path, what: Path) -> Path:
    """The Xen root in ``top``: ``top`` itself, or its one top folder (as archives have it)."""
    if _is_xen_root(top):
        return top
    entries = [p for p in top.iterdir() if p.is_dir()] if top.is_dir() else []
    if len(entries) == 1 and _is_xen_root(entries[0]):
        return entries[0]
    raise XenSourceError(f"{what}: not a Xen source tree (no xen/Makefile with xen/arch/arm)")


@dataclass(frozen=True)
class XenSource:
    """A lab's ``xen_src``: where it is and what identifies it in reports."""

    path: Path

    @classmethod
    def of(cls, path: Path) -> XenSource:
        """Checks what can be checked without unpacking: it exists, and a tree is Xen's."""
        if is_archive(path):
            if not path.is_file():
                raise XenSourceError(f"{path}: no such archive")
        elif path.is_dir():
            _source_root(path, path)
        elif path.exists():
            raise XenSourceError(
                f"{path}: not a Xen source tree or a {'/'.join(ARCHIVE_SUFFIXES)} archive of one"
            )
        else:
            raise XenSourceError(f"{path}: no such directory")
        return cls(path)

    def digest_parts(self) -> list[bytes]:
        """The bytes a build depends on: the archive, or every file of the tree but .git."""
        if is_archive(self.path):
            return [bytes.fromhex(sha256_file(self.path))]
        parts: list[bytes] = []
        for f in sorted(_tree_files(self.path)):
            parts += [str(f.relative_to(self.path)).encode(), f.read_bytes()]
        return parts

    def identity(self) -> str:
        """``sha256:<hex>`` of an archive; ``commit:<sha>`` (``-dirty``) of a git tree, else
        ``tree-sha256:<hex>`` of its files."""
        if is_archive(self.path):
            return f"sha256:{sha256_file(self.path)}"
        commit = _git(self.path, "rev-parse", "HEAD")
        if commit:
            dirty = "-dirty" if _git(self.path, "status", "--porcelain") else ""
            return f"commit:{commit}{dirty}"
        return f"tree-sha256:{digest(self.digest_parts())}"

    def unpack(self, dest: Path) -> Path:
        """Copy or extract the source into ``dest``; returns the Xen root inside it."""
        if not is_archive(self.path):
            shutil.copytree(self.path, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
            return _source_root(dest, self.path)
        try:
            with tarfile.open(self.path) as tar:
                # "data": no absolute paths, no links out of dest, no device files.
                tar.extractall(dest, filter="data")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise XenSourceError(f"{self.path}: cannot unpack: {exc}") from None
        return _source_root(dest, self.path)


def _tree_files(root: Path) -> list[Path]:
    files = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        files += [Path(directory) / n for n in names if (Path(directory) / n).is_file()]
    return files


def _git(tree: Path, *args: str) -> str:
    if not (tree / ".git").exists():
        return ""
    result = subprocess.run(
        ["git", "-C", str(tree), *args], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


@dataclass(frozen=True)
class XenBuild:
    """A built hypervisor: the image, the ``.config`` it was built with, and what it is."""

    image: Path
    config: Path
    version: str  # XEN_FULLVERSION, e.g. 4.22.0 or 4.23-unstable
    source: str  # XenSource.identity()

    @classmethod
    def load(cls, directory: Path) -> XenBuild:
        info = json.loads((directory / BUILD_INFO).read_text(encoding="utf-8"))
        return cls(directory / "xen", directory / "xen.config", info["version"], info["source"])

    def kconfig(self) -> dict[str, str]:
        return read_kconfig(self.config.read_text(encoding="utf-8").splitlines())

    def provenance(self) -> dict[str, str]:
        """What a report needs to name this Xen exactly."""
        return {
            "xen:version": self.version,
            "xen:source": self.source,
            "xen:config_sha256": sha256_file(self.config),
        }


@dataclass(frozen=True)
class PrebuiltXen:
    """A lab's ``xen_image``: what its embedded ``.config`` says (when it has one)."""

    image: Path
    sha256: str
    config_bytes: bytes | None  # the .config Xen embedded, or None (CONFIG_HYPFS_CONFIG=n)

    @classmethod
    def inspect(cls, image: Path) -> PrebuiltXen:
        data = image.read_bytes()
        return cls(image, hashlib.sha256(data).hexdigest(), embedded_config(data))

    @property
    def config(self) -> str | None:
        return None if self.config_bytes is None else self.config_bytes.decode("utf-8", "replace")

    @property
    def version(self) -> str | None:
        """XEN_FULLVERSION as the embedded .config's header gives it."""
        found = CONFIG_VERSION.search(self.config or "")
        return found.group(1) if found else None

    def kconfig(self) -> dict[str, str] | None:
        return None if self.config is None else read_kconfig(self.config.splitlines())

    def provenance(self) -> dict[str, str]:
        """The same names as :meth:`XenBuild.provenance`; an image hil built itself gives the
        same version and config digest used prebuilt."""
        facts = {"xen:source": f"image-sha256:{self.sha256}"}
        if self.config_bytes is not None:
            facts["xen:version"] = self.version or "unknown"
            facts["xen:config_sha256"] = hashlib.sha256(self.config_bytes).hexdigest()
        return facts


def embedded_config(image: bytes) -> bytes | None:
    """The ``.config`` a Xen image carries, or None: the first complete gzip member in it that
    unpacks to one (other gzip-looking bytes, and a member cut short, are skipped)."""
    start = image.find(GZIP_MAGIC)
    while start >= 0:
        unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            text = unpack.decompress(image[start:], MAX_CONFIG)
        except zlib.error:
            text = b""
        if unpack.eof and text.startswith(CONFIG_START):
            return text
        start = image.find(GZIP_MAGIC, start + 1)
    return None


def _make(tc: Toolchain, root: Path, *targets: str) -> list[str]:
    return [
        str(tc.make), "-C", str(root / "xen"), "XEN_TARGET_ARCH=arm64",
        f"CROSS_COMPILE={tc.cross_compile}", *IDENTITY, *targets,
    ]  # fmt: skip


def _configure(tc: Toolchain, root: Path, lines: Sequence[str], log: Path) -> None:
    run_logged(_make(tc, root, "defconfig"), log, "make defconfig (Xen)")
    config = root / "xen" / ".config"
    with config.open("a", encoding="utf-8") as out:
        out.write("".join(f"{line}\n" for line in lines))
    run_logged(_make(tc, root, "olddefconfig"), log, "make olddefconfig (Xen)")
    got = read_kconfig(config.read_text(encoding="utf-8").splitlines())
    dropped = [line for line in lines if got.get(line.partition("=")[0]) != line.partition("=")[2]]
    if dropped:
        raise XenSourceError(
            f"{', '.join(dropped)} did not stick after olddefconfig (a Xen without it, or one "
            f"of its dependencies unmet); see {log}"
        )


def build_xen(
    tc: Toolchain,
    build_dir: Path,
    source: XenSource,
    kconfig: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> XenBuild:
    """Build (or find cached) Xen from ``source`` with the FF-A mediator and ``kconfig``.

    Raises XenSourceError when the source is not Xen or cannot enable a requested option, and
    BuildError (naming the log) when a build step fails."""
    lines = [*REQUIRED_KCONFIG, *(check_assignment(line) for line in kconfig)]
    jobs = os.cpu_count() or 1
    key = digest(
        [
            RECIPE.encode(),
            *source.digest_parts(),
            "\n".join(lines).encode(),
            " ".join(IDENTITY).encode(),
            tool_version(tc),
        ]
    )

    def build(out: Path, log: Path) -> None:
        if progress is not None:
            progress(f"building Xen from {source.path} (log: {log})")
        root = source.unpack(out / "src")
        _configure(tc, root, lines, log)
        run_logged(_make(tc, root, f"-j{jobs}"), log, "make (Xen)")
        version = subprocess.run(
            _make(tc, root, "-s", "xenversion"), capture_output=True, text=True, check=False
        ).stdout.strip()
        if not version:
            raise BuildError(f"make xenversion (Xen) printed nothing; see {log}")
        shutil.copyfile(root / "xen" / "xen", out / "xen")
        shutil.copyfile(root / "xen" / ".config", out / "xen.config")
        info = {"version": version, "source": source.identity(), "kconfig": lines}
        (out / BUILD_INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
        shutil.rmtree(out / "src")

    build_dir.mkdir(parents=True, exist_ok=True)
    # The same lock as the other firmware builds: on 2 cores builds only slow each other down.
    with (build_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return XenBuild.load(cached_build(build_dir, "xen", key, build))
