"""A/B drains: the job (or one stage of it) against the same with Flink settings changed,
on the same events, alternating in one process.

    python -m benchmarks.ab_drain --b table.optimizer.agg-phase-strategy=ONE_PHASE
    python -m benchmarks.ab_drain --stage jvm --rounds 4 --b KEY=VALUE [--a KEY=VALUE]

A single drain here swings by 15-30% from one run to the next (benchmarks/READING.md), so
a change is judged on several pairs: one discarded job first (a process's first job has
run slower), then quick drains (benchmarks/drain.py) in the order AB BA AB ..., each
with its CPU per 10k events. Settings are Flink configuration keys, ``table.*`` planner
options included. Writes benchmarks/out/ab_drain.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.drain import MODES, STAGES, backlog, run_flink
from benchmarks.drift_report import (
    ROOT,
    command,
    header_lines,
    machine,
    now_utc,
    table,
    versions,
    write_json,
)
from benchmarks.pipeline_job import isolated_settings, workspace

OUT = ROOT / "benchmarks" / "out"


def setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()


def order(rounds: int) -> list[str]:
    """A, B, then B, A, ...: each variant as often first as second."""
    return [v for r in range(rounds) for v in (("a", "b") if r % 2 == 0 else ("b", "a"))]


def markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]
    rows = [[name, ", ".join(f"{k}={v}" for k, v in result["config"][name].items()) or "as is",
             " ".join(f"{x:.3f}" for x in runs[name]), f"{statistics.median(runs[name]):.3f}"]
            for name in ("a", "b")]
    ratio = statistics.median(runs["b"]) / statistics.median(runs["a"])
    return "\n".join([
        f"## A/B drain: stage {result['stage']}", "", *header_lines(result["meta"]), "",
        table(["variant", "Flink settings", "CPU s / 10k events, in run order", "median"], rows),
        "", f"B / A (medians): {ratio:.2f}. Order: {' '.join(result['order'])}.", ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.ab_drain", description=__doc__.split("\n")[0])
    ap.add_argument("--stage", choices=sorted(STAGES), default="job")
    ap.add_argument("--rounds", type=int, default=3, help="pairs of drains")
    ap.add_argument("--a", type=setting, action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--b", type=setting, action="append", default=[], metavar="KEY=VALUE",
                    required=True)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)
    config = {"a": dict(args.a), "b": dict(args.b)}
    meta = {"machine": machine(), "date": now_utc(),
            "command": command("benchmarks.ab_drain", sys.argv[1:] if argv is None else argv),
            "versions": versions("apache-flink")}
    runs: dict[str, list[float]] = {"a": [], "b": []}
    started = time.monotonic()
    with workspace("driftline-ab-") as work:
        repo, records, times, split = backlog(work, MODES["quick"])

        def drain(label: str, flink_config: dict[str, str]) -> float:
            out = run_flink(label, isolated_settings(work, repo), records, split, times,
                            stage=args.stage, flink_config=flink_config)
            return out["cpu_s_per_10k"]

        drain("discarded first job", config["a"])
        for i, name in enumerate(order(args.rounds)):
            runs[name].append(drain(f"{name.upper()} #{i // 2 + 1}", config[name]))
    meta["duration_s"] = time.monotonic() - started
    result = {"meta": meta, "stage": args.stage, "config": config,
              "order": [n.upper() for n in order(args.rounds)], "runs": runs}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "ab_drain.json", result)
    text = markdown(result)
    (args.out / "ab_drain.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
