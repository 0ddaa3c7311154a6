"""report.html as a person sees it: a real run's report (passes, failures, infra errors with
retries, a board taken offline, four boards x every scenario, a lab file with a long path) opened
in headless Chromium at 1400 px through selenium, and checked for what a reader relies on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from hil.cli import main
from hil.scenario import load_scenarios
from tests.labs import write_lab

pytestmark = pytest.mark.browser

WIDTH = 1400
SEVERITY = ["fail", "infra_error", "not_run", "pass"]
HOW = (
    "needs chromium + chromium-driver (scripts/setup-system.sh) and selenium "
    "(pip install -e '.[test]')"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict]:
    """A real `hil run` (4 boards x every shipped scenario) whose lab file sits at a long path."""
    root = tmp_path_factory.mktemp("browser")
    deep = root / "nightly-lab-configuration-for-the-ffa-partition-info-cache" / ("x" * 60)
    lab = write_lab(
        deep,
        {
            "good0": {},
            "good1": {},
            "old-xen": {"power": {"xen": "xen-4.21"}},  # every check fails
            "dead": {"power": {"faults": {"stall": {"stage": "xen"}}}, "timeouts": {"xen": 0.3}},
        },
        boot_attempts=2,
    )
    boards = [a for b in ("good0", "good1", "old-xen", "dead") for a in ("--board", b)]
    # Module-scoped, so set up before conftest's per-test lock directory: without its own, two
    # xdist workers building this report find each other's boards busy.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HIL_LOCK_DIR", str(root / "locks"))
        code = main(["run", "--lab", str(lab), "-j", "4", *boards])
    run_dir = (deep / "results" / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    odd = [(c["board"], c["scenario"], c["message"]) for c in summary["run"]["cases"]]
    assert code == 1, [case for case in odd if case[0] != "dead"][:5]
    return run_dir / "report.html", summary


@pytest.fixture(scope="module")
def browser(report):
    webdriver = pytest.importorskip("selenium.webdriver", reason=HOW)
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(HOW)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},1000"):
        options.add_argument(arg)
    session = webdriver.Chrome(options=options, service=Service(driver))
    try:
        session.get(report[0].as_uri())
        yield session
    finally:
        session.quit()


def test_the_run_behind_the_report_has_every_kind_of_case(report):
    _, summary = report
    assert {c["verdict"] for c in summary["run"]["cases"]} == set(SEVERITY)
    assert len(summary["run"]["cases"]) == 4 * len(load_scenarios())


def expand_all(browser) -> None:
    """Open every case, as a reader who goes through the passes too."""
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")


def test_nothing_overflows_horizontally_at_1400_px(browser):
    expand_all(browser)
    assert browser.execute_script("return window.innerWidth") <= WIDTH
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert widths[0] <= widths[1]
    # No box scrolls sideways either, the verdict matrix of every scenario included; a console
    # tail may scroll (it is a terminal), nothing else.
    overflowing = browser.execute_script(
        """
        const out = [];
        for (const el of document.querySelectorAll('main *')) {
          if (el.closest('.console') || el.closest('svg')) continue;
          if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).display !== 'inline')
            out.push(el.tagName + '.' + el.className + ' in ' + el.parentElement.className + ' ' +
                     el.scrollWidth + '>' + el.clientWidth);
        }
        return out;
        """
    )
    assert overflowing == []


def test_no_cell_is_narrower_than_its_content_needs(browser):
    expand_all(browser)
    # Each cell's content laid out alone at its narrowest without breaking a word (paths only
    # break where the report allows, after a separator) must fit the cell as laid out.
    cramped = browser.execute_script(
        """
        const out = [];
        const cells = document.querySelectorAll('table td, table th');
        for (const cell of cells) {
          const probe = document.createElement('div');
          probe.style.cssText = 'position:absolute;left:0;top:0;visibility:hidden;' +
            'width:min-content;overflow-wrap:normal;word-break:normal;white-space:' +
            getComputedStyle(cell).whiteSpace;
          for (const n of cell.childNodes) probe.appendChild(n.cloneNode(true));
          cell.appendChild(probe);
          const need = probe.getBoundingClientRect().width;
          probe.remove();
          const cs = getComputedStyle(cell);
          // With collapsed borders a cell owns half of each border it shares with a neighbour
          // (getComputedStyle still reports the whole width).
          const share =
            getComputedStyle(cell.closest('table')).borderCollapse === 'collapse' ? 0.5 : 1;
          const have = cell.getBoundingClientRect().width - parseFloat(cs.paddingLeft) -
            parseFloat(cs.paddingRight) -
            share * (parseFloat(cs.borderLeftWidth) + parseFloat(cs.borderRightWidth));
          if (need > have + 0.5)
            out.push(cell.textContent.slice(0, 60) + ': ' + need + ' > ' + have);
        }
        return [cells.length, out];
        """
    )
    count, problems = cramped
    assert count > 400  # the matrix, run facts, every case's artifacts and provenance
    assert problems == []


def test_every_digest_is_on_one_line(browser, report):
    expand_all(browser)
    lines = browser.execute_script(
        "return [...document.querySelectorAll('table.provenance .digest')]"
        ".map(d => [d.textContent, d.getClientRects().length])"
    )
    # Every digest summary.json holds is shown once: the run's in the header, each case's own
    # (those that differ from the run's) in its case.
    run = report[1]["run"]
    expected = list(run["provenance"].values()) + [
        value
        for case in run["cases"]
        for key, value in case["provenance"].items()
        if run["provenance"].get(key) != value
    ]
    assert len(expected) > len(run["provenance"]) + len(run["cases"])  # cases carry their own
    assert sorted(text for text, _ in lines) == sorted(expected)
    assert [d for d in lines if d[1] != 1] == []


def test_failures_come_first_and_expanded_passes_folded(browser, report):
    browser.refresh()  # as the page opens, whatever other tests expanded
    shown = browser.execute_script(
        """
        return [...document.querySelectorAll('details.case')].map(d =>
          [d.querySelector('.badge').className.split('v-')[1], d.open,
           d.getBoundingClientRect().top]);
        """
    )
    verdicts = [v for v, _, _ in shown]
    assert verdicts == sorted(verdicts, key=SEVERITY.index)
    assert verdicts[0] == "fail"
    assert all(is_open == (v != "pass") for v, is_open, _ in shown)
    tops = [top for _, _, top in shown]
    assert tops == sorted(tops)


def test_every_link_resolves(browser, report):
    links = browser.execute_script(
        "return [...document.querySelectorAll('a')].map(a => [a.getAttribute('href'), a.href])"
    )
    files = [url for href, url in links if not href.startswith("#")]
    anchors = [href[1:] for href, _ in links if href.startswith("#")]
    run_dir = report[0].parent
    artifacts = [p for c in report[1]["run"]["cases"] for p in c["artifacts"].values()]
    assert len(files) == len(artifacts) > 100
    for url in files:
        path = Path(unquote(urlsplit(url).path))
        assert path.is_file(), url
        assert run_dir in path.parents
    ids = set(
        browser.execute_script("return [...document.querySelectorAll('[id]')].map(e => e.id)")
    )
    assert anchors and set(anchors) <= ids


def test_an_infra_error_timeline_shows_each_boot_attempt(browser, report):
    infra = [c for c in report[1]["run"]["cases"] if c["verdict"] == "infra_error"]
    assert infra and all(c["attempts"] == 2 for c in infra)
    drawn = browser.execute_script(
        """
        return [...document.querySelectorAll('details.case')]
          .filter(d => d.querySelector('.badge.v-infra_error'))
          .map(d => [...d.querySelectorAll('svg .tl-attempt')].map(r => {
            const box = r.getBoundingClientRect();
            return [box.left, box.width, r.querySelector('title').textContent];
          }));
        """
    )
    assert len(drawn) == len(infra)
    for bars in drawn:
        assert len(bars) == 2
        (x1, w1, tip1), (x2, w2, tip2) = bars
        assert w1 > 10 and w2 > 10 and x2 > x1 + w1  # one after the other, the backoff between
        assert tip1.startswith("attempt 1: infra error at xen after")
        assert tip2.startswith("attempt 2: infra error at xen after")
