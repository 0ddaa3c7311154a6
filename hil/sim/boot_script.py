"""The modelled boot of a virtual board as an ordered list of stages, each printing its lines on
one console: TF-A BL1/BL2/BL31 and Xen on the normal-world console ``ns``, the test SPMC on the
``secure`` console, then Xen's FF-A init (from the oracle for the deployed SPMC config), dom0
creation and the probe's transcript. Pure: the board process only plays the script back.

Xen timestamps (``console_timestamps``) are modelled board time since Xen started, derived from
the stage delays, so a script is reproducible whatever the host's load."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from hil.probe import format_transcript, run_plan
from hil.sim.bundle import SimBundle
from hil.xen.messages import message
from hil.xen.oracle import XenBoot, XenOptions, XenProfile, get_profile

STAGES: tuple[str, ...] = ("bl1", "bl2", "bl31", "spmc", "xen", "ffa", "dom0", "probe")
CONSOLES: tuple[str, ...] = ("ns", "secure")
EOL = "\r\n"

# Roughly what an FVP takes per stage, in seconds; --stage-delay replaces them all.
REALISTIC_DELAYS: dict[str, float] = {
    "bl1": 0.05,
    "bl2": 0.2,
    "bl31": 0.1,
    "spmc": 0.1,
    "xen": 0.5,
    "ffa": 0.05,
    "dom0": 0.3,
    "probe": 0.1,
}
TFA_VERSION = "v2.12.1(release):v2.12.1"
TFA_BUILT = "Built : 00:00:00, Jul 29 2026"
XEN_BUILD = "(hil@virtual) (aarch64-linux-gnu-gcc (GCC) 12.2.0) debug={debug} Wed Jul 29 2026"
# The manifest address TF-A hands the SPMC in x0; only printed.
SPMC_MANIFEST = 0x0E002000
NO_BUNDLE = "HIL virtual board: no firmware bundle deployed"
# The oracle's line for a Xen panic at FF-A init; Xen stops there ('noreboot'), dom0 never starts.
PANIC_KEY = "panic"
# Modelled time between two consecutive Xen lines.
LINE_TIME = 0.000050


@dataclass(frozen=True)
class Stage:
    name: str
    console: str
    lines: tuple[str, ...]
    delay: float


@dataclass(frozen=True)
class BootConfig:
    profile: str = "xen-4.22"
    xen: XenOptions = field(default_factory=XenOptions)
    console_timestamps: bool = False
    # None: realistic per-stage delays; a number: that many seconds for every stage.
    stage_delay: float | None = None

    def delay(self, stage: str) -> float:
        return REALISTIC_DELAYS[stage] if self.stage_delay is None else self.stage_delay


class _XenConsole:
    """Formats Xen console lines and keeps the modelled time since Xen started."""

    def __init__(self, timestamps: bool) -> None:
        self.timestamps = timestamps
        self.now = 0.0

    def lines(self, texts: Iterable[str], elapsed: float) -> tuple[str, ...]:
        self.now += elapsed
        out = []
        for text in texts:
            stamp = ""
            if self.timestamps:
                usec = round(self.now * 1_000_000)
                stamp = f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] "
            out.append(f"(XEN) {stamp}{text}")
            self.now += LINE_TIME
        return tuple(out)


def _tfa(config: BootConfig) -> list[Stage]:
    def banner(image: str) -> list[str]:
        return [f"NOTICE:  {image}: {TFA_VERSION}", f"NOTICE:  {image}: {TFA_BUILT}"]

    bl1 = ["NOTICE:  Booting Trusted Firmware", *banner("BL1"), "NOTICE:  BL1: Booting BL2"]
    bl2 = [*banner("BL2"), "NOTICE:  BL1: Booting BL31"]
    return [
        Stage("bl1", "ns", tuple(bl1), config.delay("bl1")),
        Stage("bl2", "ns", tuple(bl2), config.delay("bl2")),
        Stage("bl31", "ns", tuple(banner("BL31")), config.delay("bl31")),
    ]


def _spmc(config: BootConfig, bundle: SimBundle) -> Stage:
    spmc = bundle.spmc
    line = (
        f"HIL test SPMC v1 core=0 manifest=0x{SPMC_MANIFEST:08x} version=0x{spmc.version.word:08x}"
        f" count={spmc.count} fpi_size={spmc.fpi_size} data_len={len(spmc.data)}"
        f" supported={len(spmc.supported)}"
    )
    return Stage("spmc", "secure", (line,), config.delay("spmc"))


def _command_line(options: XenOptions, timestamps: bool) -> str:
    words = ["console=dtuart", "dom0_mem=256M", *options.boot_args(), "noreboot"]
    if timestamps:
        words.append("console_timestamps=boot")
    return " ".join(words)


def _probe(
    config: BootConfig, profile: XenProfile, bundle: SimBundle, boot: XenBoot, el: int
) -> Stage:
    guest = profile.guest(bundle.spmc, boot, config.xen)
    lines = format_transcript(run_plan(bundle.plan, guest), bundle.plan, exception_level=el)
    return Stage("probe", "ns", tuple(lines), config.delay("probe"))


def _xen(config: BootConfig, profile: XenProfile, bundle: SimBundle, boot: XenBoot) -> list[Stage]:
    options = config.xen
    console = _XenConsole(config.console_timestamps)
    version = profile.name.removeprefix("xen-") + ".0"
    build = XEN_BUILD.format(debug="y" if options.debug else "n")
    smccc = options.smccc_version
    xen_lines = console.lines(
        [
            message("xen_version").render(version=version, rest=build),
            f"Command line: {_command_line(options, config.console_timestamps)}",
            f"Using SMC Calling Convention v{smccc >> 16}.{smccc & 0xFFFF}",
        ],
        0.0,
    )
    ffa_lines = console.lines([line.text for line in boot.lines], config.delay("ffa"))
    stages = [
        Stage("xen", "ns", xen_lines, config.delay("xen")),
        Stage("ffa", "ns", ffa_lines, config.delay("ffa")),
    ]
    if any(line.key == PANIC_KEY for line in boot.lines):
        return stages
    dom0 = [
        "*** LOADING DOMAIN 0 ***",
        "Loading d0 kernel from boot module @ 0000000048000000",
        "*** Serial input to DOM0 (type 'CTRL-a' three times to switch input)",
        "Freed 376kB init memory.",
    ]
    stages.append(
        Stage("dom0", "ns", console.lines(dom0, config.delay("dom0")), config.delay("dom0"))
    )
    # dom0 is the hardware domain: Xen passes its console_io text through without a prefix.
    stages.append(_probe(config, profile, bundle, boot, el=1))
    return stages


def boot_script(config: BootConfig, bundle: SimBundle | None) -> tuple[Stage, ...]:
    """The stages of one boot with ``bundle`` deployed (None: nothing deployed, so the board
    refuses after TF-A instead of booting firmware it does not have)."""
    stages = _tfa(config)
    if bundle is None:
        stages.append(Stage("spmc", "ns", (NO_BUNDLE,), config.delay("spmc")))
        return tuple(stages)
    stages.append(_spmc(config, bundle))
    profile = get_profile(config.profile)
    boot = profile.boot(bundle.spmc, config.xen)
    if profile.name == "none":
        # No hypervisor: the probe is BL33 at EL2 and talks to the SPMD/SPMC directly.
        stages.append(_probe(config, profile, bundle, boot, el=2))
    else:
        stages += _xen(config, profile, bundle, boot)
    return tuple(stages)
