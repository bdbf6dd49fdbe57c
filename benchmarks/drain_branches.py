"""What each branch of the job costs in a backlog drain: quick drains of the job with some
of its branches, interleaved on the same events, so that a branch's cost is a difference
within one round.

    python -m benchmarks.drain_branches [--rounds 2] [--quick: one round]

Variants, each a quick drain of benchmarks/drain.py:

- ``windows``: everything before the Python branches (stage ``jvm``: decode, dead letters,
  event time, every window, the rows into a blackhole);
- ``feature_windows``: the same without the drift slices' window;
- ``features``: the job with the feature branch alone, its offline log off;
- ``features_log``: the same with the offline log;
- ``job``: the whole job (features with the log, and drift).

A single drain here swings by 15-30% (benchmarks/READING.md), so read the differences
within each round, not across rounds. Writes benchmarks/results/drain_branches.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.ab_drain import Variant, interleaved_drains
from benchmarks.drift_report import (
    RESULTS,
    command,
    header_lines,
    machine,
    now_utc,
    table,
    versions,
    write_json,
)

VARIANTS = {
    "windows": Variant("jvm"),
    "feature_windows": Variant("jvm", ("features",)),
    "features": Variant("job", ("features",), offline_log=False),
    "features_log": Variant("job", ("features",)),
    "job": Variant("job", ("features", "drift")),
}


def markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]
    names = list(runs)
    rows = [[f"round {i + 1}", *(f"{runs[n][i]['cpu_s_per_10k']:.3f}" for n in names)]
            for i in range(result["rounds"])]
    rows.append(["median", *(f"{statistics.median(r['cpu_s_per_10k'] for r in runs[n]):.3f}"
                             for n in names)])
    lines = ["## What each branch costs in a drain", "", *header_lines(result["meta"]), "",
             table(["CPU s / 10k events", *names], rows), ""]
    for name in names:
        for i, run in enumerate(runs[name]):
            split = ", ".join(f"{k} {v:.1f} s" for k, v in run["cpu_s_by_process"].items())
            lines.append(f"- {name}, round {i + 1}: {split}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.drain_branches",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one round")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds = 1
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    meta = {"machine": machine(), "date": now_utc(),
            "command": command("benchmarks.drain_branches",
                               sys.argv[1:] if argv is None else argv),
            "versions": versions("apache-flink")}
    started = time.monotonic()
    runs = interleaved_drains("driftline-branches-", VARIANTS, args.rounds)
    meta["duration_s"] = time.monotonic() - started
    result = {"meta": meta, "rounds": args.rounds, "runs": runs}
    write_json(args.out / "drain_branches.json", result)
    text = markdown(result)
    (args.out / "drain_branches.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
