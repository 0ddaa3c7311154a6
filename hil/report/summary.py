"""summary.json: the whole run as data, plus the verdict counts and exit code a dashboard reads
without re-deriving them."""

from __future__ import annotations

import json
from pathlib import Path

from hil.config import read_config_file
from hil.errors import ConfigError, ExitCode
from hil.results import RunResult

FILE_NAME = "summary.json"
MAX_SUMMARY_BYTES = 256 << 20


def render_summary(run: RunResult, reports_error: str | None = None) -> bytes:
    """The document; with ``reports_error`` (the other reports could not be written) it says so
    and holds the exit code ``hil run`` then ends with, as a dashboard must read it."""
    document: dict[str, object] = {
        "run": run.to_dict(),
        "counts": {verdict.value: n for verdict, n in run.counts().items()},
        "exit_code": int(run.exit_code if reports_error is None else reports_exit(run)),
    }
    if reports_error is not None:
        document["reports"] = f"incomplete: {reports_error}"
    return (json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n").encode()


def load_summary(path: Path) -> RunResult:
    """The run stored in a summary.json; ConfigError naming the file when it is not one."""
    # Not a FIFO or a device (the read would never end); a run's summary is far below the cap.
    data = read_config_file(path, max_bytes=MAX_SUMMARY_BYTES)
    try:
        document = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not JSON: nested too deeply") from None
    if not isinstance(document, dict) or not isinstance(document.get("run"), dict):
        raise ConfigError(f"{path}: no 'run' object: not a hil summary.json")
    return RunResult.from_dict(document["run"], source=str(path))


def reports_exit(run: RunResult) -> ExitCode:
    """How a run whose reports could not all be written ends: 1 when a check failed (a
    regression outranks a broken lab, as in RunResult.exit_code), else 3 (this machine failed)."""
    return ExitCode.CHECK_FAILED if run.exit_code is ExitCode.CHECK_FAILED else ExitCode.INFRA
