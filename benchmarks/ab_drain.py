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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Variant:
    """One side of an interleaved comparison: a stage of benchmarks/drain.py, its branches
    (None: the stage's own), Flink settings added, and the offline log on or off."""

    stage: str = "job"
    branches: tuple[str, ...] | None = None
    flink_config: Mapping[str, str] = field(default_factory=dict)
    offline_log: bool = True


def order(rounds: int, names: Sequence[str] = ("a", "b")) -> list[str]:
    """``names``, then reversed, then in order again, ...: each variant as often early as
    late (A B, B A, A B for two)."""
    return [n for r in range(rounds) for n in (names if r % 2 == 0 else names[::-1])]


def interleaved_drains(prefix: str, variants: Mapping[str, Variant],
                       rounds: int) -> dict[str, list[dict[str, Any]]]:
    """Quick drains of every variant on the same events, in :func:`order`, after one
    discarded job of the first (a process's first job has run slower); each drain's
    result (benchmarks/drain.run_flink) by variant, in run order."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    with workspace(prefix) as work:
        repo, records, times, split = backlog(work, MODES["quick"])

        def drain(label: str, variant: Variant) -> dict[str, Any]:
            settings = isolated_settings(work, repo)
            offline = settings.offline.model_copy(update={"enabled": variant.offline_log})
            return run_flink(label, settings.model_copy(update={"offline": offline}), records,
                             split, times, stage=variant.stage,
                             branches=None if variant.branches is None else list(variant.branches),
                             flink_config=dict(variant.flink_config))

        drain("discarded first job", next(iter(variants.values())))
        for name in order(rounds, list(variants)):
            runs[name].append(drain(f"{name} #{len(runs[name]) + 1}", variants[name]))
    return runs


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
    started = time.monotonic()
    drains = interleaved_drains("driftline-ab-", {
        name: Variant(args.stage, flink_config=settings) for name, settings in config.items()},
        args.rounds)
    runs = {name: [d["cpu_s_per_10k"] for d in done] for name, done in drains.items()}
    meta["duration_s"] = time.monotonic() - started
    result = {"meta": meta, "stage": args.stage, "config": config,
              "order": [n.upper() for n in order(args.rounds)], "runs": runs}
    write_json(args.out / "ab_drain.json", result)
    text = markdown(result)
    (args.out / "ab_drain.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
