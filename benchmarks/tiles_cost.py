"""Python CPU of the feature tiles per second of event time, at a steady event rate.

    python -m benchmarks.tiles_cost [--quick]

The tiles worker (streams/feature_operators.py) must, for every second of event time,
store that second's pane batches (``ViewWindows.add``), slide the windows over the
boundaries passed (``ViewWindows.advance``) and hand its state back to Beam, which
pickles each stored pane batch once (a ``MapState`` entry) and each touched shard's
``ShardTiles`` once per bundle. If that adds up to more than
one CPU second per second of event time, the worker falls behind at that rate, whatever
the JVM does, and freshness grows without bound.

This runs the same ``features/`` code without Flink, Kafka or Redis, one process, on
synthetic pane batches: events at a fixed rate, spread uniformly over the employees of
the simulator's tenants, for the shipped repo and for the pipeline benchmark's
low-latency variant (every slide 1 s, so 1 s panes). It reports CPU per second of event
time as the windows fill up, by step, and the pickled state's size.

Writes benchmarks/results/tiles_cost.{json,md}.
"""

from __future__ import annotations

import argparse
import pickle
import random
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from benchmarks.drift_report import (
    RESULTS,
    ROOT,
    command,
    header_lines,
    log,
    machine,
    now_utc,
    table,
    versions,
    write_json,
)
from benchmarks.pipeline_job import copy_repo
from features.aggregations import PartialColumn
from features.plans import ENTITY_SEP, ViewPlan, load_view_plans
from features.tiles import MemoryPanes, PaneBatch, ShardTiles, ViewWindows
from streams.settings import JobSettings

TAG = "tiles_cost"
MODULE = "benchmarks.tiles_cost"
SHARDS = JobSettings.model_fields["shards"].default
TENANTS, EMPLOYEES = 4, 3_000  # the pipeline benchmark's traffic
INTENTS = [f"intent_{i}" for i in range(12)]
#: Seconds of event time per repo (the shipped repo's 1 h windows fill in an hour; its
#: 24 h ones do not, which would take 24x the events), reported in ``steps`` steps.
MODES = {
    "quick": {"rates": [1_000, 5_000], "shipped_s": 600, "low-latency_s": 30, "steps": 2},
    "standard": {"rates": [1_000, 5_000], "shipped_s": 3_600, "low-latency_s": 180,
                 "steps": 6},
}


def _value(column: PartialColumn, events: list[tuple[int, int, float, str]]) -> Any:
    """The JVM's partial column over one entity's events in a pane (time, seq, x, intent)."""
    if column.kind == "long":
        return len(events)
    if column.kind == "double":
        return sum(x for _, _, x, _ in events)
    if column.kind == "string":
        t, seq, _, intent = max(events)
        return f"{t:013d}{seq:019d}{intent}"
    if column.kind == "string_set":
        return sorted({intent for *_, intent in events})
    return [x for _, _, x, _ in events]  # double_list


def _entity(plan: ViewPlan, employee: int) -> str:
    keys = {"employee_id": f"emp-{employee}", "tenant_id": f"tenant-{employee % TENANTS}"}
    return ENTITY_SEP.join(keys[k] for k in plan.join_keys)


def _batches(plan: ViewPlan, pane_end: int, events: list[tuple[int, int, float, int]]
             ) -> dict[int, PaneBatch]:
    """One pane's batches per shard, as the JVM's pane rows become them."""
    by_entity: dict[str, list[tuple[int, int, float, str]]] = {}
    for t, seq, x, employee in events:
        by_entity.setdefault(_entity(plan, employee), []).append(
            (t, seq, x, INTENTS[employee % len(INTENTS)]))
    by_shard: dict[int, list[str]] = {}
    for entity in by_entity:
        by_shard.setdefault(zlib.crc32(entity.encode()) % SHARDS, []).append(entity)
    out = {}
    for shard, entities in by_shard.items():
        partials = tuple(tuple(
            spec.aggregate.from_columns(tuple(_value(c, by_entity[e])
                                              for c in spec.aggregate.partial_columns()))
            for spec in plan.features) for e in entities)
        out[shard] = PaneBatch(plan.name, shard, pane_end, tuple(entities), partials)
    return out


class PickledPanes(MemoryPanes):
    """A pane store that pickles each batch it stores, as a ``MapState`` does once."""

    def __init__(self) -> None:
        super().__init__()
        self.pickle_s, self.sizes = 0.0, {}

    def put(self, key: int, value: PaneBatch) -> None:
        t0 = time.process_time()
        self.sizes[key] = len(pickle.dumps(value))
        self.pickle_s += time.process_time() - t0
        super().put(key, value)

    def remove(self, key: int) -> None:
        super().remove(key)
        del self.sizes[key]


def run_case(plan: ViewPlan, rate: int, event_s: int, n_steps: int) -> list[dict]:
    """Feed ``event_s`` seconds of events at ``rate``; CPU per event-time second, in
    ``n_steps`` steps."""
    rng = random.Random(7)
    windows = ViewWindows(plan)
    shards = [(ShardTiles(), PickledPanes()) for _ in range(SHARDS)]
    pane_ms, start = plan.pane_ms, 1_795_000_000_000
    step: dict[str, float] = {"add": 0.0, "advance": 0.0, "pickle": 0.0}  # pickle: both kinds
    steps, rows, seq = [], 0, 0

    def stored() -> float:  # CPU spent pickling stored batches (within add, advance)
        return sum(panes.pickle_s for _, panes in shards)

    n_panes = max(1, event_s * 1000 // pane_ms)
    panes_per_step = max(1, n_panes // n_steps)
    for k in range(1, n_panes + 1):
        pane_end = start + k * pane_ms
        n = rate * pane_ms // 1000
        events = []
        for _ in range(n):
            seq += 1
            events.append((pane_end - rng.randrange(pane_ms), seq, rng.random() * 1000,
                           rng.randrange(EMPLOYEES)))
        batches = _batches(plan, pane_end, events)
        t0, s0 = time.process_time(), stored()
        for shard, batch in batches.items():
            windows.add(*shards[shard], batch)
        t1, s1 = time.process_time(), stored()
        for state in shards:  # every shard's timer at the pane end (ticks reach them all)
            rows += len(windows.advance(*state, pane_end))
        t2, s2 = time.process_time(), stored()
        value_bytes = sum(len(pickle.dumps(tiles)) for tiles, _ in shards)
        t3 = time.process_time()
        step["add"] += t1 - t0 - (s1 - s0)
        step["advance"] += t2 - t1 - (s2 - s1)
        step["pickle"] += t3 - t2 + s2 - s0
        if k % panes_per_step == 0 or k == n_panes:
            seconds = (k - (len(steps) * panes_per_step)) * pane_ms / 1000
            pane_bytes = sum(sum(panes.sizes.values()) for _, panes in shards)
            steps.append({"through_s": k * pane_ms / 1000, "rows": rows,
                          "state_mib": (value_bytes + pane_bytes) / 2**20,
                          "value_mib": value_bytes / 2**20,
                          **{f"{p}_per_s": v / seconds for p, v in step.items()},
                          "cpu_per_s": sum(step.values()) / seconds})
            log(TAG, f"{plan.name} at {rate:,}/s, through {k * pane_ms / 1000:.0f} s: "
                     f"{steps[-1]['cpu_per_s']:.3f} CPU s per event-time s")
            step, rows = dict.fromkeys(step, 0.0), 0
    return steps


def report(result: dict) -> str:
    lines = ["## Feature tiles: Python CPU per second of event time", "",
             *header_lines(result["meta"]), "",
             "The tiles' own work (store pane batches, slide the windows and evaluate the "
             "entities whose panes moved, pickle each stored batch once and the shard's "
             "value as Beam does once per bundle) on synthetic panes, without Flink: above "
             "1.0 CPU s per event-time second, one worker cannot keep up at that rate. "
             f"{EMPLOYEES:,} employees in {TENANTS} tenants, {SHARDS} shards; every shard "
             "advances at every pane end, and its value is pickled there. State: the stored "
             "batches and the values; value: what is pickled again at every bundle.", ""]
    rows = []
    for case in result["cases"]:
        for s in case["steps"]:
            rows.append([case["repo"], case["view"], f"{case['pane_ms'] / 1000:g} s",
                         f"{case['rate']:,}/s", f"{s['through_s']:.0f} s",
                         f"{s['cpu_per_s']:.3f}", f"{s['add_per_s']:.3f}",
                         f"{s['advance_per_s']:.3f}", f"{s['pickle_per_s']:.3f}",
                         f"{s['state_mib']:.1f}", f"{s['value_mib']:.2f}"])
    lines.append(table(["repo", "view", "pane", "rate", "event time through",
                        "CPU s / event-time s", "add", "advance", "pickle",
                        "state MiB", "value MiB"], rows))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    mode_name = "quick" if args.quick else "standard"
    mode = MODES[mode_name]
    started = time.monotonic()
    meta = {"machine": machine(), "date": now_utc(), "mode": mode_name, "settings": mode,
            "versions": versions(),
            "command": command(MODULE, sys.argv[1:] if argv is None else argv)}
    with tempfile.TemporaryDirectory() as tmp:
        repos = {"shipped": load_view_plans(ROOT / "feature_repo"),
                 "low-latency": load_view_plans(
                     copy_repo(ROOT / "feature_repo", Path(tmp) / "repo", slide_s=1))}
        cases = []
        for repo, plans in repos.items():
            for plan in plans:
                for rate in mode["rates"]:
                    steps = run_case(plan, rate, mode[f"{repo}_s"], mode["steps"])
                    cases.append({"repo": repo, "view": plan.name, "pane_ms": plan.pane_ms,
                                  "rate": rate, "steps": steps})
    meta["duration_s"] = time.monotonic() - started
    result = {"meta": meta, "cases": cases}
    write_json(args.out / "tiles_cost.json", result)
    (args.out / "tiles_cost.md").write_text(report(result))
    log(TAG, f"wrote {args.out / 'tiles_cost.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
