"""Scenario files (``firmware/scenarios/<name>.toml``): a crafted partition-descriptor set for the
SPMC to serve, and the FF-A version the probe guest runs at. What Xen must do with it is never
written in the file: the oracle computes it for the profile under test.

Format::

    description = "One SP without bit 15"
    tags = ["bit15", "smoke"]    # optional: what `hil run --tag T` selects by
    firmware_version = "1.1"     # FF-A version the SPMC reports (default 1.1)
    guest_version = "1.1"        # version the dom0 probe negotiates (default 1.1)
    layout = "v1.1"              # descriptor layout: v1.0 (8 B), v1.1 (24 B), v1.3 (48 B)
    fpi_size = 24                # optional: size reported to Xen; the stride entries are laid at
    count = 3                    # optional: count reported to Xen (default: number of partitions)
    unsupported = ["FFA_RUN"]    # optional: ABIs the SPMC reports as not supported (through
                                 # FFA_FEATURES: it still answers FFA_VERSION, FFA_RX_RELEASE)
    extra_supported = ["FFA_MSG_SEND2"]  # optional: ABIs it reports as supported (FFA_FEATURES)

    [[partition]]
    id = 0x8001                  # required
    uuid = "..."                 # default Nil
    exec_ctx = 1
    properties = 0x103           # raw u32, or a list of names: ["direct_req_recv", "aarch64"]
    repeat = 1                   # N copies with consecutive ids
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.config import display_path, load_toml
from hil.errors import ConfigError
from hil.ffa import FfaFormatError, FfaVersion, FunctionId, PartitionProperties, parse_uuid
from hil.ffa.abi import V1_1
from hil.ffa.partition import DescriptorLayout, PartitionInfo, check_partition_id
from hil.ffa.spmc import DEFAULT_SUPPORTED, PAGE_SIZE, SpmcConfig
from hil.probe import ProbePlan
from hil.results import validate_name

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "firmware" / "scenarios"

_LAYOUTS = {
    "v1.0": DescriptorLayout.V1_0,
    "v1.1": DescriptorLayout.V1_1,
    "v1.3": DescriptorLayout.V1_3,
}
_TOP_KEYS = {
    "description",
    "tags",
    "firmware_version",
    "guest_version",
    "layout",
    "fpi_size",
    "count",
    "unsupported",
    "extra_supported",
    "partition",
}
_PARTITION_KEYS = {"id", "uuid", "exec_ctx", "properties", "repeat"}
# The SPMC serves one page of descriptors; with the smallest layout (v1.0, 8 bytes) that is 512.
# More partitions than that could never reach Xen, and would only cost hil memory.
MAX_PARTITIONS = PAGE_SIZE // DescriptorLayout.V1_0.value
# The probe's plan window (PROBE_PLAN_SIZE in firmware/probe/layout.h): the plan asks for each
# distinct UUID, so it bounds how many a scenario may give its partitions.
PROBE_PLAN_BYTES = 0x1000


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    partitions: tuple[PartitionInfo, ...]
    layout: DescriptorLayout = DescriptorLayout.V1_1
    fpi_size: int | None = None
    count: int | None = None
    firmware_version: FfaVersion = V1_1
    guest_version: FfaVersion = V1_1
    unsupported: tuple[FunctionId, ...] = ()
    extra_supported: tuple[FunctionId, ...] = ()
    tags: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)

    def spmc_config(self) -> SpmcConfig:
        """The list exactly as the test SPMC will report it."""
        stride = self.fpi_size if self.fpi_size is not None else self.layout.value
        # Only what fits in the page the SPMC serves is laid out: fpi_size is reported as
        # crafted (up to 4 GiB), but never allocated beyond that page.
        data = bytearray()
        for partition in self.partitions:
            if len(data) >= PAGE_SIZE:
                break
            entry = partition.pack(self.layout)[:stride]
            data += entry.ljust(min(stride, PAGE_SIZE - len(data)), b"\0")
        count = self.count if self.count is not None else len(self.partitions)
        reported = (*DEFAULT_SUPPORTED, *self.extra_supported)
        supported = tuple(dict.fromkeys(int(f) for f in reported if f not in self.unsupported))
        return SpmcConfig(bytes(data[:PAGE_SIZE]), count, stride, self.firmware_version, supported)

    def probe_plan(self) -> ProbePlan:
        return ProbePlan.standard(self.guest_version, (p.uuid for p in self.partitions))


def load_scenario(path: Path) -> Scenario:
    raw = load_toml(path, "scenario")
    try:
        return _build(path, raw)
    except (FfaFormatError, ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def scenario_files(directory: Path) -> list[Path]:
    """The scenario files of ``directory``, sorted; a directory that is missing, not one, or
    holds none is a ConfigError: a run of zero scenarios would pass having checked nothing."""
    shown = display_path(directory)
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise ConfigError(f"scenarios directory {shown} {problem}")
    try:
        files = sorted(directory.glob("*.toml"))
    except OSError as exc:
        raise ConfigError(f"scenarios directory {shown}: cannot list: {exc.strerror}") from None
    if not files:
        raise ConfigError(f"scenarios directory {shown} holds no scenario (*.toml)")
    return files


def load_scenarios(
    directory: Path = SCENARIO_DIR, names: Sequence[str] | None = None
) -> list[Scenario]:
    """All scenarios in ``directory`` sorted by name, or those ``names`` select, in the order
    given. A name may be a shell-style glob (``count-*``, ``*-non-secure``); each one must match
    a scenario, and a scenario selected twice runs once."""
    files = scenario_files(directory)
    if names is None:
        return [load_scenario(p) for p in files]
    known = {p.stem: p for p in files}
    chosen: dict[str, Path] = {}
    for name in names:
        matches = (
            sorted(fnmatch.filter(known, name)) if _is_glob(name) else [name] * (name in known)
        )
        if not matches:
            what = "no scenario matches" if _is_glob(name) else "unknown scenario"
            raise ConfigError(f"{what} {name!r} in {directory} (known: {', '.join(known)})")
        chosen.update((m, known[m]) for m in matches if m not in chosen)
    return [load_scenario(p) for p in chosen.values()]


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


def _build(path: Path, raw: dict[str, Any]) -> Scenario:
    name = validate_name("scenario", path.stem)
    _no_unknown(raw, _TOP_KEYS, "")
    parts = raw.get("partition", [])
    if not isinstance(parts, list):
        raise ValueError("field 'partition': expected an array of tables ([[partition]])")
    partitions = []
    for i, table in enumerate(parts):
        partitions += _partitions(i, table)
        if len(partitions) > MAX_PARTITIONS:
            raise ValueError(
                f"field 'partition[{i}]': more than {MAX_PARTITIONS} partitions (the SPMC serves "
                f"one {PAGE_SIZE}-byte page of descriptors, at least 8 bytes each)"
            )
    layout = _LAYOUTS.get(str(raw.get("layout", "v1.1")))
    if layout is None:
        raise ValueError(f"field 'layout': {raw['layout']!r} is not one of {', '.join(_LAYOUTS)}")
    scenario = Scenario(
        name=name,
        description=_typed(raw, "description", str, ""),
        partitions=tuple(partitions),
        layout=layout,
        fpi_size=_u32(raw, "fpi_size"),
        count=_u32(raw, "count"),
        firmware_version=_version(raw, "firmware_version"),
        guest_version=_version(raw, "guest_version"),
        unsupported=_functions(raw, "unsupported"),
        extra_supported=_functions(raw, "extra_supported"),
        tags=_tags(raw),
        path=path,
    )
    plan = len(scenario.probe_plan().encode())
    if plan > PROBE_PLAN_BYTES:
        distinct = len({p.uuid for p in partitions})
        raise ValueError(
            f"field 'partition': {distinct} distinct UUIDs make a {plan}-byte probe plan, more "
            f"than the probe's {PROBE_PLAN_BYTES}-byte window holds"
        )
    return scenario


def _partitions(index: int, raw: Any) -> list[PartitionInfo]:
    where = f"partition[{index}]"
    if not isinstance(raw, dict):
        raise ValueError(f"field '{where}': expected a table")
    _no_unknown(raw, _PARTITION_KEYS, where + ".")
    if "id" not in raw:
        raise ValueError(f"field '{where}.id': missing")
    first = _typed(raw, "id", int, 0, where)
    repeat = _typed(raw, "repeat", int, 1, where)
    uuid_text = _typed(raw, "uuid", str, None, where)
    try:
        check_partition_id(first)
        if not 1 <= repeat <= 256 or first + repeat - 1 > 0xFFFF:
            raise ValueError(f"field '{where}.repeat': {repeat} copies do not fit ids to 0xffff")
        uuid = parse_uuid(uuid_text) if uuid_text is not None else None
        return [
            PartitionInfo(
                first + n,
                _typed(raw, "exec_ctx", int, 1, where),
                _properties(raw.get("properties", 0), where),
                *(() if uuid is None else (uuid,)),
            )
            for n in range(repeat)
        ]
    except FfaFormatError as exc:
        raise ValueError(f"field '{where}': {exc}") from None


def _properties(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        try:
            return sum(PartitionProperties[v.upper()] for v in value)
        except KeyError as exc:
            known = ", ".join(p.name.lower() for p in PartitionProperties)  # type: ignore[union-attr]
            raise ValueError(
                f"field '{where}.properties': unknown {exc} (known: {known})"
            ) from None
    raise ValueError(f"field '{where}.properties': expected an integer or a list of names")


def _functions(raw: dict[str, Any], key: str) -> tuple[FunctionId, ...]:
    functions = []
    for name in _typed(raw, key, list, []):
        try:
            functions.append(FunctionId[str(name).removeprefix("FFA_")])
        except KeyError:
            raise ValueError(f"field '{key}': {name!r} is not an FF-A function") from None
    return tuple(functions)


def _tags(raw: dict[str, Any]) -> tuple[str, ...]:
    tags = _typed(raw, "tags", list, [])
    for tag in tags:
        if not isinstance(tag, str) or not tag or tag != tag.strip() or "," in tag:
            raise ValueError(f"field 'tags': {tag!r} is not a tag (a non-empty word, no comma)")
    return tuple(dict.fromkeys(tags))


def _version(raw: dict[str, Any], key: str) -> FfaVersion:
    value = _typed(raw, key, str, "1.1")
    try:
        return FfaVersion.parse(value)
    except FfaFormatError as exc:
        raise ValueError(f"field '{key}': {exc}") from None


def _u32(raw: dict[str, Any], key: str) -> int | None:
    value = _typed(raw, key, int, None)
    if value is not None and not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"field '{key}': {value} is outside u32")
    return value


def _typed(raw: dict[str, Any], key: str, kind: type, default: Any, where: str = "") -> Any:
    value = raw.get(key, default)
    if value is default:
        return value
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        field_name = f"{where}.{key}" if where else key
        raise ValueError(f"field '{field_name}': expected {kind.__name__}, got {value!r}")
    return value


def _no_unknown(raw: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"field '{where}{unknown[0]}': unknown key")
