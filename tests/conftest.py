import os
import signal

import pytest
from hypothesis import HealthCheck, settings

# Property tests judge results, not speed: on a loaded CI host data generation may be slow, and
# that must not fail a run (nor may one slow example trip a per-example deadline).
settings.register_profile("hil", suppress_health_check=[HealthCheck.too_slow], deadline=None)
settings.load_profile("hil")

pytest_plugins = ["pytester"]


# CI installs every tool (scripts/setup-system.sh via `make test`) and sets this, so a tier that
# would silently skip there fails instead.
REQUIRE_ALL_TIERS = os.environ.get("HIL_REQUIRE_ALL_TIERS") == "1"
# The most specific first: it names the tier.
TOOL_TIERS = ("linux", "xen", "qemu", "labgrid", "browser")


@pytest.fixture(autouse=True)
def default_stop_signals():
    """Each test starts with Ctrl-C and SIGTERM handled as a fresh process has them. A run that
    a signal stopped leaves both ignored on purpose (hil.interrupts: its process is ending), so
    after an in-process interrupt test the worker would ignore the next test's Ctrl-C, and so
    would every hil process it starts (an ignored signal is inherited). Same for a suite started
    in the background of a non-interactive shell, which inherits SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield


@pytest.fixture(autouse=True)
def private_board_locks(tmp_path_factory, monkeypatch):
    """Board locks live per test: parallel workers reuse board names like virtual0."""
    monkeypatch.setenv("HIL_LOCK_DIR", str(tmp_path_factory.mktemp("locks")))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    tier = next((t for t in TOOL_TIERS if item.get_closest_marker(t)), None)
    if REQUIRE_ALL_TIERS and tier and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{tier} tier skipped but HIL_REQUIRE_ALL_TIERS=1: {report.longrepr}"
    return report
