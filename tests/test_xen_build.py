"""Building Xen from a lab's ``xen_src``: what is refused (exit 2) or fails (exit 3), with one line
naming the board, field and build log; the cache; the options the board boots and the oracle reads.

The trees here are stand-ins with a Makefile that behaves like Xen's on the targets hil uses, so
this runs without a cross compiler; tests/firmware/test_real_xen.py builds the real ones."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from hil.boards import builds as board_builds
from hil.bundle import Bundle, sha256_file
from hil.errors import ConfigError, ExitCode, InfraError
from hil.firmware.build import BuildError
from hil.firmware.toolchain import Toolchain
from hil.firmware.xen import XenSource, XenSourceError, build_xen
from hil.lab import BoardConfig, load_lab
from hil.xen.kconfig import read_kconfig
from hil.xen.oracle import XenOptions
from tests.labs import BOARDS_DIR, toml_value

# A Xen-shaped tree: defconfig writes a .config, olddefconfig keeps it (or runs $DROP, to stand
# for Kconfig dropping an option), the default goal writes xen/xen (or fails with $FAIL).
MAKEFILE = """\
all:
\t@if [ -n "$(FAIL)" ]; then echo "xen/common/foo.c:1: error: boom"; exit 2; fi
\tprintf 'XENIMAGE' > xen
defconfig:
\tprintf 'CONFIG_ARM=y\\n# CONFIG_DEBUG is not set\\n' > .config
olddefconfig:
\t$(DROP)
xenversion:
\t@echo 4.99.0-fake
"""


def fake_xen_tree(root: Path, makefile: str = MAKEFILE) -> Path:
    (root / "xen" / "arch" / "arm").mkdir(parents=True)
    (root / "xen" / "Makefile").write_text(makefile)
    (root / "Config.mk").write_text("")
    return root


def tar_gz(tree: Path, out: Path, top: str = "xen-4.99.0") -> Path:
    with tarfile.open(out, "w:gz") as tar:
        tar.add(tree, arcname=top)
    return out


@pytest.fixture
def tc() -> Toolchain:
    """Make is real; the compiler is never run by the stand-in Makefile."""
    true, make = Path(shutil.which("true") or "/bin/true"), Path(shutil.which("make") or "make")
    return Toolchain(true, true, true, true, make, true, Path("/nonexistent"))


def test_a_tree_builds_once_then_comes_from_the_cache(tmp_path: Path, tc: Toolchain) -> None:
    source = XenSource.of(fake_xen_tree(tmp_path / "xen-src"))
    said: list[str] = []
    first = build_xen(tc, tmp_path / "build", source, ["CONFIG_FFA_VM_TO_VM=y"], said.append)
    assert first.image.read_bytes() == b"XENIMAGE"
    assert first.version == "4.99.0-fake"
    assert first.source.startswith("tree-sha256:")
    assert first.kconfig() == {
        "CONFIG_ARM": "y",
        "CONFIG_DEBUG": "n",
        "CONFIG_UNSUPPORTED": "y",
        "CONFIG_FFA": "y",
        "CONFIG_FFA_VM_TO_VM": "y",
    }
    # One progress line, naming the source and where the log goes.
    (line,) = said
    assert line.startswith(f"building Xen from {source.path} (log: {tmp_path / 'build'}/xen-")
    # Nothing of the source or its objects is kept, only what a bundle and a report use.
    assert sorted(p.name for p in first.image.parent.iterdir()) == [
        "build.json",
        "xen",
        "xen.config",
    ]

    again = build_xen(tc, tmp_path / "build", source, ["CONFIG_FFA_VM_TO_VM=y"], said.append)
    assert again == first and len(said) == 1
    # Other Kconfig lines are another build.
    other = build_xen(tc, tmp_path / "build", source, [], said.append)
    assert other.image.parent != first.image.parent and len(said) == 2


def test_an_archive_builds_and_is_named_by_its_sha256(tmp_path: Path, tc: Toolchain) -> None:
    archive = tar_gz(fake_xen_tree(tmp_path / "t"), tmp_path / "xen-4.99.0.tar.gz")
    build = build_xen(tc, tmp_path / "build", XenSource.of(archive))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert build.source == f"sha256:{digest}"
    assert build.provenance()["xen:source"] == f"sha256:{digest}"
    assert build.provenance()["xen:version"] == "4.99.0-fake"


def test_an_archive_that_is_not_xen_is_refused(tmp_path: Path, tc: Toolchain) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "README").write_text("not xen")
    archive = tar_gz(tmp_path / "other", tmp_path / "linux.tar.gz", top="linux")
    with pytest.raises(XenSourceError, match=r"linux.tar.gz: not a Xen source tree \(no xen/"):
        build_xen(tc, tmp_path / "build", XenSource.of(archive))
    garbage = tmp_path / "junk.tar.xz"
    garbage.write_bytes(b"\xfd7zXZ\0garbage")
    with pytest.raises(XenSourceError, match=r"junk.tar.xz: cannot unpack"):
        build_xen(tc, tmp_path / "build", XenSource.of(garbage))


def test_an_archive_cannot_write_outside_the_build(tmp_path: Path, tc: Toolchain) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../../escaped")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(XenSourceError, match="cannot unpack"):
        build_xen(tc, tmp_path / "build", XenSource.of(archive))
    assert not list(tmp_path.rglob("escaped"))


def test_a_dropped_kconfig_line_is_refused_with_the_log(tmp_path: Path, tc: Toolchain) -> None:
    drop = MAKEFILE.replace("\t$(DROP)", "\tsed -i '/CONFIG_FFA=/d' .config")
    source = XenSource.of(fake_xen_tree(tmp_path / "old-xen", drop))
    with pytest.raises(XenSourceError) as info:
        build_xen(tc, tmp_path / "build", source)
    message = str(info.value)
    assert message.startswith("CONFIG_FFA=y did not stick after olddefconfig")
    log = Path(message.rpartition("; see ")[2])
    assert log.is_file() and "olddefconfig" in log.read_text()


def test_a_failed_build_names_its_log_and_is_not_cached(tmp_path: Path, tc: Toolchain) -> None:
    fail = MAKEFILE.replace("$(FAIL)", "yes")
    source = XenSource.of(fake_xen_tree(tmp_path / "broken", fail))
    with pytest.raises(BuildError) as info:
        build_xen(tc, tmp_path / "build", source)
    message = str(info.value)
    assert message.startswith("make (Xen) failed with exit code 2; see ")
    assert "error: boom" in Path(message.rpartition("; see ")[2]).read_text()
    assert not [p for p in (tmp_path / "build").iterdir() if p.is_dir()]


def write_lab(directory: Path, **board: object) -> Path:
    lab = directory / "lab.toml"
    fields = {"name": "q0", "type": "qemu-virt", "xen_profile": "xen-4.22", **board}
    body = "\n".join(f"{k} = {toml_value(v)}" for k, v in fields.items())
    lab.write_text(
        f"boards_dir = {toml_value(str(BOARDS_DIR))}\n[[board]]\n{body}\n"
        'power = { backend = "qemu" }\ndeploy = { backend = "qemu" }\n'
    )
    return lab


@pytest.mark.parametrize(
    ("board", "expected"),
    [
        ({"xen_src": "nowhere"}, "field 'xen_src': {d}/nowhere: no such directory"),
        ({"xen_src": "."}, "field 'xen_src': {d}: not a Xen source tree (no xen/Makefile"),
        ({"xen_src": "lab.toml"}, "field 'xen_src': {d}/lab.toml: not a Xen source tree or a"),
        ({"xen_src": "x.tar.xz"}, "field 'xen_src': {d}/x.tar.xz: no such archive"),
        (
            {"xen_src": ".", "xen_image": "xen"},
            "field 'xen_src': give either 'xen_src' (hil builds it) or 'xen_image', not both",
        ),
        (
            {"xen_kconfig": ["CONFIG_FFA_VM_TO_VM=y", "FFA=y"]},
            "field 'xen_kconfig[1]': 'FFA=y' is not a Kconfig assignment",
        ),
        ({"xen_dom0_vcpus": 0}, "field 'xen_dom0_vcpus': must be 1 to 128, got 0"),
    ],
)
def test_bad_xen_fields_are_one_line(tmp_path: Path, board: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_lab(write_lab(tmp_path, **board))
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == ExitCode.USAGE
    assert message.startswith(f"{tmp_path / 'lab.toml'}: board 'q0': ")
    assert expected.format(d=tmp_path) in message


def test_the_oracle_assumes_what_the_board_boots(tmp_path: Path) -> None:
    board = load_lab(write_lab(tmp_path, xen_dom0_vcpus=2, xen_kconfig=["CONFIG_DEBUG=y"])).board(
        "q0"
    )
    options = board.xen_options()
    assert options == XenOptions(debug=True, dom0_vcpus=2)
    # A built Xen's .config wins over the lab's description of a prebuilt image.
    built = board.xen_options(read_kconfig(["CONFIG_FFA_VM_TO_VM=y"]))
    assert built == XenOptions(vm_to_vm=True, dom0_vcpus=2)
    # Xen picks one dom0 vCPU per CPU unless told: the command line always tells it.
    assert XenOptions().boot_args() == ("dom0_max_vcpus=1",)
    assert options.boot_args() == ("dom0_max_vcpus=2",)


def test_a_failed_build_fails_every_later_bundle_without_rebuilding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tc: Toolchain
) -> None:
    fail = MAKEFILE.replace("$(FAIL)", "yes")
    fake_xen_tree(tmp_path / "broken", fail)
    board = load_lab(write_lab(tmp_path, xen_src="broken")).board("q0")
    monkeypatch.setenv("HIL_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setattr(board_builds.toolchain, "locate", lambda: tc)
    monkeypatch.setattr(board_builds, "_xen_builds", {})
    builds = []
    real_build = board_builds.build_xen
    monkeypatch.setattr(
        board_builds, "build_xen", lambda *a, **k: builds.append(1) or real_build(*a, **k)
    )
    for _ in range(2):
        with pytest.raises(InfraError) as info:
            board_builds.board_xen(board)
        message = str(info.value)
        assert message.startswith("board 'q0': Xen build failed: make (Xen) failed with exit")
        assert "\n" not in message and message.endswith(".log")
    assert builds == [1]


def test_bundle_records_the_xen_options_and_facts(tmp_path: Path) -> None:
    from hil.bundle import write_bundle
    from hil.scenario import load_scenarios

    (scenario,) = load_scenarios(names=["one-non-secure"])
    facts = {"xen:version": "4.22.0"}
    options = XenOptions(dom0_vcpus=2, debug=True)
    written = write_bundle(scenario, "virtual", tmp_path / "b", None, options, facts)
    loaded = Bundle.load(tmp_path / "b")
    assert loaded.xen_options == written.xen_options == options
    assert loaded.provenance()["xen:version"] == "4.22.0"
    manifest = json.loads((tmp_path / "b" / "bundle.json").read_text())
    manifest["xen_options"] = {"dom0_cpus": 2}
    (tmp_path / "b" / "bundle.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="malformed bundle manifest"):
        Bundle.load(tmp_path / "b")


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("make_source", "code", "expected"),
    [
        (
            lambda d: tar_gz(fake_xen_tree(d / "t"), d / "linux.tar.gz", top="lin/ux"),
            ExitCode.USAGE,
            "field 'xen_src': {d}/linux.tar.gz: not a Xen source tree (no xen/Makefile",
        ),
        (
            lambda d: fake_xen_tree(d / "broken", MAKEFILE.replace("$(FAIL)", "yes")),
            ExitCode.INFRA,
            "board 'q0': Xen build failed: make (Xen) failed with exit code 2; see {b}/xen-",
        ),
    ],
    ids=["not-xen", "build-fails"],
)
def test_hil_run_gives_one_line_and_the_exit_code_before_any_case(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    make_source,  # type: ignore[no-untyped-def]
    code: ExitCode,
    expected: str,
) -> None:
    from hil.cli import main
    from hil.firmware import toolchain

    if toolchain.missing():
        pytest.skip("needs the QEMU tier's tools: run scripts/setup-system.sh")
    source = make_source(tmp_path)
    build = tmp_path / "build"
    monkeypatch.setenv("HIL_BUILD_DIR", str(build))
    monkeypatch.setattr(board_builds, "_xen_builds", {})
    lab = write_lab(tmp_path, xen_src=str(source))
    assert main(["run", "--lab", str(lab), "--results", str(tmp_path / "results")]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hil: error: ") and expected.format(d=tmp_path, b=build) in err[-1]
    # Nothing ran, no report claims anything (the results directory may have been checked).
    assert not list((tmp_path / "results").rglob("*.json"))


CONFIG = "#\n# Automatically generated file; DO NOT EDIT.\n# Xen/arm 4.99.1-rc Configuration\n#\n"


def prebuilt_image(path: Path, config: str | None, cut: bool = False) -> Path:
    """Image-shaped bytes with a gzip-looking decoy and, unless None, a gzipped .config where
    Xen's linker puts it (xen_config_data); ``cut``: the image ends halfway through it."""
    decoy = b"\x1f\x8b\x08" + b"not gzip at all"
    body = b"" if config is None else gzip.compress(config.encode())
    tail = body[: len(body) // 2] if cut else body + b"\x00" * 4096
    path.write_bytes(b"\x00ARM64 Xen" * 100 + decoy + b"\x00" * 64 + tail)
    return path


def prebuilt_board(tmp_path: Path, image: Path, **extra: object) -> BoardConfig:
    return load_lab(write_lab(tmp_path, xen_image=str(image), xen_dom0_vcpus=2, **extra)).board(
        "q0"
    )


def test_a_prebuilt_image_says_how_it_was_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No xen_kconfig needed: the oracle's options and the report's facts come from the .config
    Xen embeds in its image, as they do for a Xen hil builds."""
    monkeypatch.setenv("HIL_BUILD_DIR", str(tmp_path / "build"))
    config = CONFIG + "CONFIG_FFA=y\nCONFIG_FFA_VM_TO_VM=y\nCONFIG_DEBUG=y\n"
    image = prebuilt_image(tmp_path / "xen", config)
    xen = board_builds.board_xen(prebuilt_board(tmp_path, image))
    assert xen is not None and xen.image == image
    assert xen.options == XenOptions(vm_to_vm=True, debug=True, dom0_vcpus=2)
    assert xen.config is not None and xen.config.read_text() == config
    assert xen.facts == {
        "xen:version": "4.99.1-rc",
        "xen:source": f"image-sha256:{hashlib.sha256(image.read_bytes()).hexdigest()}",
        "xen:config_sha256": hashlib.sha256(config.encode()).hexdigest(),
    }
    # Lines that agree with the image are fine; a line that does not is one line, exit 2.
    agreeing = prebuilt_board(tmp_path, image, xen_kconfig=["CONFIG_DEBUG=y"])
    assert board_builds.board_xen(agreeing) == xen
    wrong = prebuilt_board(tmp_path, image, xen_kconfig=["CONFIG_DEBUG=y", "CONFIG_HYPFS=y"])
    with pytest.raises(ConfigError) as info:
        board_builds.board_xen(wrong)
    assert str(info.value) == (
        f"{tmp_path / 'lab.toml'}: board 'q0': field 'xen_kconfig[1]': CONFIG_HYPFS=y, but "
        f"{image} was built with CONFIG_HYPFS=n (its embedded .config)"
    )


def test_a_prebuilt_image_without_the_mediator_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIL_BUILD_DIR", str(tmp_path / "build"))
    image = prebuilt_image(tmp_path / "xen", CONFIG + "# CONFIG_FFA is not set\n")
    with pytest.raises(ConfigError) as info:
        board_builds.board_xen(prebuilt_board(tmp_path, image))
    assert info.value.exit_code == ExitCode.USAGE and "\n" not in str(info.value)
    assert str(info.value).endswith(
        f"field 'xen_image': {image} was built without CONFIG_FFA=y (its embedded .config): "
        "there is no FF-A mediator to check"
    )


@pytest.mark.parametrize("cut", [False, True], ids=["no-config", "cut-short"])
def test_a_prebuilt_image_without_a_config_goes_by_the_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: bool
) -> None:
    """Xen built with CONFIG_HYPFS_CONFIG=n carries no .config, and a .config cut short is none:
    xen_kconfig is all hil knows."""
    monkeypatch.setenv("HIL_BUILD_DIR", str(tmp_path / "build"))
    padding = "".join(f"# CONFIG_PAD_{i} is not set\n" for i in range(400))
    config = CONFIG + "CONFIG_FFA=y\n" + padding if cut else None
    image = prebuilt_image(tmp_path / "xen", config, cut)
    board = prebuilt_board(tmp_path, image, xen_kconfig=["CONFIG_FFA_VM_TO_VM=y"])
    xen = board_builds.board_xen(board)
    assert xen is not None and xen.config is None
    assert xen.options == XenOptions(vm_to_vm=True, dom0_vcpus=2)
    assert xen.facts == {"xen:source": f"image-sha256:{sha256_file(image)}"}
