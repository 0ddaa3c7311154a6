"""``hil scenarios``: the scenarios a run can select, with what each one crafts and its tags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hil.commands.common import USAGE_EXIT, add_command, exit_codes
from hil.scenario import SCENARIO_DIR, Scenario, load_scenarios
from hil.terminal import columns, neutralise

LAYOUT_NAMES = {8: "v1.0", 24: "v1.1", 48: "v1.3"}


def add_parser(sub: Any) -> None:
    parser = add_command(
        sub,
        "scenarios",
        "list the scenarios: name, description, layout, partitions, tags",
        "One line per scenario file: its name (what --scenario takes), descriptor layout,\n"
        "the number of partitions the SPMC reports, its tags (what --tag takes) and its\n"
        "description. NAME arguments are names or globs, as for hil run --scenario.",
        exit_codes("0  listed", USAGE_EXIT),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="names or globs (default: all)")
    parser.add_argument("--scenarios-dir", type=Path, default=SCENARIO_DIR)
    parser.add_argument("--tag", action="append", default=[], help="only those with this tag")
    parser.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    scenarios = load_scenarios(args.scenarios_dir, args.names or None)
    if args.tag:
        scenarios = [s for s in scenarios if set(args.tag) & set(s.tags)]
    rows = [_row(s) for s in scenarios]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    table = [("NAME", "LAYOUT", "SPS", "TAGS", "DESCRIPTION")]
    table += [
        (r["name"], r["layout"], str(r["partitions"]), ",".join(r["tags"]), r["description"])
        for r in rows
    ]
    for line in columns(table):
        print(neutralise(line))
    return 0


def _row(scenario: Scenario) -> dict[str, Any]:
    config = scenario.spmc_config()
    layout = LAYOUT_NAMES.get(config.fpi_size, f"{config.fpi_size} B")
    if scenario.layout.value != config.fpi_size:
        layout = f"{LAYOUT_NAMES[scenario.layout.value]} as {config.fpi_size} B"
    return {
        "name": scenario.name,
        "description": scenario.description,
        "layout": layout,
        "partitions": config.count,
        "tags": list(scenario.tags),
    }
