"""False alarms on stationary traffic and detection delay after a shift, for the job's monitor.

    python -m benchmarks.drift_quality            # standard set
    python -m benchmarks.drift_quality --quick    # smoke version

Traffic comes from driftline's own simulator (``streams.simulator``), so every shift is
one of its drift injections with its stated unit: ``mean_shift`` in the column's sds,
``variance_change`` as a spread multiplier, ``category_mix`` as the share of intent mass
moved to the rarest intent, ``embedding_shift`` in units of the per-dimension embedding
noise. A pool of simulated events is the population: windows and references are drawn
from it with replacement (``drift.calibration.bootstrap_sampler``), which makes the
stationary stream exactly stationary (the simulator's daily load and calendar cycles
would otherwise be drift of their own). A drifted pool is the same seed with one drift
injected from the first event, so only that column differs.

The monitor is the job's (``drift.default_monitor``: PSI and KS on three numeric columns,
chi-square on two categorical ones, RFF-MMD on the embedding; nine tests, Holm-corrected
to a family-wise alpha) with a reference of the job's default size.

Writes ``benchmarks/results/drift_quality.json``, ``drift_quality.md`` and
``drift_over_time.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import binom

from benchmarks import drift_report as rep
from drift import MonitorConfig, MonitorEvaluator, ReferenceProfile, default_monitor
from drift.calibration import (
    Columns,
    FalseAlarmReport,
    Sampler,
    bootstrap_sampler,
    detection_delay,
    shifted_stream,
)
from streams.settings import DriftSettings
from streams.simulator import DriftInjection, SimulatorConfig, TrafficSimulator

MODULE = "benchmarks.drift_quality"
TAG = "drift_quality"
ALPHA = DriftSettings().alpha  # the job's declared family-wise false-alarm rate
REFERENCE_EVENTS = DriftSettings().reference_events  # the job's default reference
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
EVENTS_PER_HOUR = 20_000.0
CONFIDENCE = 0.99  # one-sided, for the bounds on false-alarm rates
BOOTSTRAP = 2000  # resamples of the references for those bounds
SPREAD_WINDOW = 5000  # window size of the per-reference experiment (worst case: m = n)
SPREAD_REFERENCES = (REFERENCE_EVENTS, 50_000)

# (column, kind, magnitudes): the simulator's drift injections
SHIFTS: list[tuple[str, str, tuple[float, ...]]] = [
    ("response_latency_ms", "mean_shift", (0.05, 0.1, 0.2, 0.5)),
    ("confidence", "variance_change", (0.9, 1.1, 1.25, 1.5)),
    ("intent", "category_mix", (0.01, 0.02, 0.05, 0.1)),
    ("embedding", "embedding_shift", (0.1, 0.25, 0.5, 1.0)),
]
UNITS = {
    "mean_shift": "sd",
    "variance_change": "x spread",
    "category_mix": "of mass",
    "embedding_shift": "x noise",
}


@dataclass(frozen=True)
class Plan:
    pool: int  # simulated events per pool (the population)
    window_sizes: tuple[int, ...]  # false-alarm window sizes
    references: int  # independent references for the false-alarm windows ...
    windows_per_reference: int  # ... and the windows tested against each, per size
    spread_references: int  # per-reference rates: references of each size ...
    spread_windows: int  # ... and windows of SPREAD_WINDOW events against each
    delay_window_sizes: tuple[int, ...]
    delay_repeats: int  # seeded streams per (shift, window size)
    delay_windows_before: float  # windows of stationary events before the shift
    delay_horizon: int  # windows after the shift before giving up
    plot_windows: int
    plot_window_size: int


PLANS = {
    "full": Plan(
        pool=100_000,
        window_sizes=(500, 2000, 5000),
        references=100,
        windows_per_reference=10,
        spread_references=40,
        spread_windows=100,
        delay_window_sizes=(500, 2000, 5000),
        delay_repeats=3,
        delay_windows_before=2.5,
        delay_horizon=30,
        plot_windows=60,
        plot_window_size=2000,
    ),
    "quick": Plan(
        pool=40_000,
        window_sizes=(500, 2000, 5000),
        references=20,
        windows_per_reference=10,
        spread_references=5,
        spread_windows=40,
        delay_window_sizes=(2000,),
        delay_repeats=2,
        delay_windows_before=2.5,
        delay_horizon=20,
        plot_windows=40,
        plot_window_size=2000,
    ),
}


# ------------------------------------------------------------------------------- data
def simulate(n: int, seed: int, drift: DriftInjection | None = None) -> dict[str, Any]:
    """``n`` simulated interactions as the monitor's columns (numpy arrays)."""
    sim = TrafficSimulator(
        SimulatorConfig(seed=seed, start_ms=START_MS, events_per_hour=EVENTS_PER_HOUR,
                        drift=drift)
    )  # fmt: skip
    rows = list(sim.events(n))
    return {
        "response_latency_ms": np.array([r["response_latency_ms"] for r in rows], dtype=float),
        "confidence": np.array([r["confidence"] for r in rows], dtype=float),
        "satisfaction": np.array(
            [np.nan if r["satisfaction"] is None else r["satisfaction"] for r in rows],
            dtype=float,
        ),
        "intent": np.array([r["intent"] for r in rows], dtype=object),
        "channel": np.array([r["channel"] for r in rows], dtype=object),
        "embedding": np.array([r["embedding"] for r in rows], dtype=float),
    }


def injection(column: str, kind: str, magnitude: float) -> DriftInjection:
    return DriftInjection(column=column, kind=kind, magnitude=magnitude, start_count=0)


def label(kind: str, magnitude: float) -> str:
    return f"{magnitude:g} {UNITS[kind]}"


# ------------------------------------------------------------------------------- false alarms
def false_alarms(plan: Plan, config: MonitorConfig, pool: Columns, seed: int) -> dict[str, Any]:
    """Stationary windows per size: any-alert rate of the monitor, and each test alone at
    the monitor's alpha (what it would do without the correction).

    Each of ``plan.references`` fresh references (the job's size) is tested against a few
    windows, so the rate is the one the declared alpha promises: over references and
    windows both. Windows sharing a reference are correlated, so the bounds come from a
    bootstrap over references, not from a binomial.
    """
    sample = bootstrap_sampler(pool)
    names = ["monitor", *(f"{c}:{s}" for c, s in config.tests())]
    shape = (plan.references, plan.windows_per_reference)
    hits = {(t, n): np.zeros(shape, dtype=bool) for t in names for n in plan.window_sizes}
    skipped = dict.fromkeys(plan.window_sizes, 0)
    total = plan.references * plan.windows_per_reference * len(plan.window_sizes)
    bar = rep.Progress(TAG, "stationary windows", total)
    for r in range(plan.references):
        rng = np.random.default_rng([seed, r, 11])
        profile = ReferenceProfile.fit(sample(REFERENCE_EVENTS, rng), config, source="benchmark")
        ev = MonitorEvaluator(config, profile)
        for n in plan.window_sizes:
            for k in range(plan.windows_per_reference):
                out = ev.assess(sample(n, rng), k, k + 1, detected_at_ms=0)
                hits[("monitor", n)][r, k] = bool(out.alerts)
                skipped[n] += bool(out.skipped)
                for o in out.outcomes:
                    hits[(f"{o.column}:{o.statistic}", n)][r, k] = o.result.p_value <= config.alpha
                bar.step()
    boot = np.random.default_rng([seed, 12]).integers(
        0, plan.references, (BOOTSTRAP, plan.references)
    )
    rows = []
    for (name, n), h in hits.items():
        per_ref = h.mean(axis=1)
        resampled = per_ref[boot].mean(axis=1)
        rpt = FalseAlarmReport(n, h.size, int(h.sum()), config.alpha, {}, skipped[n])
        lo, hi = np.quantile(resampled, [1 - CONFIDENCE, CONFIDENCE])
        rows.append(
            {
                "test": name,
                "window": n,
                "windows": h.size,
                "alarms": rpt.n_alarmed,
                "per_1000": 1000 * rpt.rate,
                "upper_bound_per_1000": 1000 * float(hi),
                "lower_bound_per_1000": 1000 * float(lo),
                "binomial_upper_bound_per_1000": 1000 * rpt.upper_bound(CONFIDENCE),
                "declared_per_1000": 1000 * config.alpha,
                "above_declared": bool(lo > config.alpha),
                "skipped_windows": skipped[n],
            }
        )
    return {"rows": rows, "windows_per_size": plan.references * plan.windows_per_reference}


def reference_spread(plan: Plan, pool: Columns, seed: int) -> list[dict[str, Any]]:
    """False-alarm rate of single tests *given* one reference, across references.

    A deployment keeps one reference for many windows, so it sees the rate conditional on
    that reference. The p-values account for the reference's own sampling error on
    average (the 1/n + 1/m terms), but one reference as small as the window moves every
    window's statistic the same way; a large reference makes the conditional rate alpha.
    """
    sample = bootstrap_sampler(pool)
    cfg = {c.column: c for c in default_monitor().checks}
    tests = [("response_latency_ms", "ks"), ("response_latency_ms", "psi"), ("intent", "chi2")]
    total = len(SPREAD_REFERENCES) * plan.spread_references * plan.spread_windows
    bar = rep.Progress(TAG, "per-reference rates", total)
    out = []
    for m in SPREAD_REFERENCES:
        rates = {t: [] for t in tests}
        for r in range(plan.spread_references):
            rng = np.random.default_rng([seed, m, r, 13])
            ref = sample(m, rng)
            fitted = {(c, s): cfg[c].build(s).fit(ref[c], c) for c, s in tests}
            hits = dict.fromkeys(tests, 0)
            for _ in range(plan.spread_windows):
                w = sample(SPREAD_WINDOW, rng)
                for (c, s), f in fitted.items():
                    hits[(c, s)] += f.test(w[c], ALPHA).p_value <= ALPHA
                bar.step()
            for t in tests:
                rates[t].append(hits[t] / plan.spread_windows)
        for (c, s), v in rates.items():
            arr = np.asarray(v)
            out.append(
                {
                    "test": f"{c}:{s}",
                    "reference": m,
                    "window": SPREAD_WINDOW,
                    "references": len(arr),
                    "windows_per_reference": plan.spread_windows,
                    "per_1000": 1000 * float(arr.mean()),
                    "median_per_1000": 1000 * float(np.median(arr)),
                    "p90_per_1000": 1000 * float(np.quantile(arr, 0.9)),
                    "max_per_1000": 1000 * float(arr.max()),
                    "share_above_2x": float(np.mean(arr > 2 * ALPHA)),
                }
            )
    return out


# ------------------------------------------------------------------------------- delay
def delays(
    plan: Plan, config: MonitorConfig, pool: Columns, seed: int
) -> list[dict[str, Any]]:
    before = bootstrap_sampler(pool)
    rng0 = np.random.default_rng([seed, 21])
    ev = MonitorEvaluator(
        config, ReferenceProfile.fit(before(REFERENCE_EVENTS, rng0), config, source="benchmark")
    )
    total = sum(len(m) for _, _, m in SHIFTS) * len(plan.delay_window_sizes) * plan.delay_repeats
    bar = rep.Progress(TAG, "shifted streams", total)
    out = []
    for column, kind, magnitudes in SHIFTS:
        for mag in magnitudes:
            drifted = simulate(plan.pool, seed, injection(column, kind, mag))
            after: Sampler = bootstrap_sampler(drifted)
            for n in plan.delay_window_sizes:
                shift_at = int(plan.delay_windows_before * n)
                n_windows = int(np.ceil(plan.delay_windows_before)) + plan.delay_horizon
                runs = []
                for r in range(plan.delay_repeats):
                    rng = np.random.default_rng([seed, n, r, 22])
                    stream = shifted_stream(before, after, n, n_windows, shift_at, rng)
                    runs.append(detection_delay(ev, stream, shift_at, feature=column))
                    bar.step()
                found = [d.delay_events for d in runs if d.delay_events is not None]
                out.append(
                    {
                        "column": column,
                        "kind": kind,
                        "magnitude": mag,
                        "shift": label(kind, mag),
                        "window": n,
                        "streams": len(runs),
                        "detected": len(found),
                        "delay_events": [d.delay_events for d in runs],
                        "median_delay_events": float(np.median(found)) if found else None,
                        "max_delay_events": max(found) if found else None,
                        "horizon_events": n_windows * n - shift_at,
                        "false_alarms_before": sum(d.false_alarms_before for d in runs),
                        "windows_before": int(shift_at // n) * len(runs),
                        "other_features": sorted({f for d in runs for f in d.features} - {column}),
                    }
                )
    return out


# ------------------------------------------------------------------------------- plot
def over_time(plan: Plan, config: MonitorConfig, pool: Columns, seed: int) -> dict[str, Any]:
    """One stream with the latency mean moved 0.2 sd and the embedding shifted 0.5 noise
    units from the same event: every test's value, threshold and p-value per window."""
    lat = simulate(plan.pool, seed, injection("response_latency_ms", "mean_shift", 0.2))
    emb = simulate(plan.pool, seed, injection("embedding", "embedding_shift", 0.5))
    drifted = {**pool, "response_latency_ms": lat["response_latency_ms"],
               "embedding": emb["embedding"]}  # fmt: skip
    before, after = bootstrap_sampler(pool), bootstrap_sampler(drifted)
    rng = np.random.default_rng([seed, 31])
    ev = MonitorEvaluator(
        config, ReferenceProfile.fit(before(REFERENCE_EVENTS, rng), config, source="benchmark")
    )
    n, k = plan.plot_window_size, plan.plot_windows
    shift_window = k // 3
    series: dict[str, dict[str, list[float]]] = {}
    alerts: list[list[str]] = []
    bar = rep.Progress(TAG, "plotted stream", k)
    for w in shifted_stream(before, after, n, k, shift_window * n, rng):
        out = ev.assess(w, 0, 1, detected_at_ms=0)
        for o in out.outcomes:
            s = series.setdefault(
                f"{o.column}:{o.statistic}", {"value": [], "threshold": [], "p_value": [],
                                               "level": []}
            )  # fmt: skip
            s["value"].append(o.result.value)
            s["threshold"].append(o.result.threshold)
            s["p_value"].append(o.result.p_value)
            s["level"].append(o.level)
        alerts.append(sorted({f"{a['feature']}:{a['statistic']}" for a in out.alerts}))
        bar.step()
    return {"window": n, "windows": k, "shift_window": shift_window, "series": series,
            "alerts": alerts}  # fmt: skip


def plot(trace: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, shift = trace["window"], trace["shift_window"]
    x = np.arange(trace["windows"])
    panels = [
        ("response_latency_ms:psi", "PSI, response_latency_ms (mean +0.2 sd)", "value", False),
        ("response_latency_ms:ks", "KS p-value, response_latency_ms", "p_value", True),
        ("embedding:mmd", "MMD$^2$, query embedding (shift 0.5 x noise)", "value", False),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 8.5), sharex=True)
    for ax, (key, title, what, log) in zip(axes, panels, strict=True):
        s = trace["series"][key]
        y = np.asarray(s[what])
        line = np.asarray(s["level"] if what == "p_value" else s["threshold"])
        alarmed = np.array([key in a for a in trace["alerts"]])
        ax.plot(x, y, marker="o", ms=3, lw=1.2, color="tab:blue", label=what.replace("_", "-"))
        ax.step(x, line, where="mid", color="tab:red", lw=1.2, ls="--",
                label="alert level (Holm-corrected)" if what == "p_value"
                else "threshold at the corrected level")  # fmt: skip
        ax.scatter(x[alarmed], y[alarmed], s=40, facecolors="none", edgecolors="tab:red",
                   zorder=3, label="alert")  # fmt: skip
        ax.axvline(shift - 0.5, color="black", lw=1, ls=":")
        if log:
            ax.set_yscale("log")
            ax.set_ylim(max(1e-300, float(np.nanmin(y)) / 10), 1.5)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc="lower left" if log else "upper left")
    axes[0].annotate("shift", xy=(shift - 0.5, 1.0), xycoords=("data", "axes fraction"),
                     xytext=(3, -12), textcoords="offset points", fontsize=8)  # fmt: skip
    axes[-1].set_xlabel(f"window ({n:,} events each; the shift starts at window {shift})")
    fig.suptitle(
        f"Drift statistics per window, job monitor (alpha={ALPHA}, reference {REFERENCE_EVENTS:,})",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------- report
def markdown(res: dict[str, Any], meta: dict[str, Any]) -> str:
    plan = meta["plan"]
    fa = res["false_alarms"]
    sizes = plan["window_sizes"]
    k = plan["spread_windows"]
    noisy = binom.sf(math.ceil(3 * ALPHA * k) - 1, k, ALPHA)  # P(rate >= 3 alpha | alpha)
    out = ["## Drift: false alarms and detection delay", "", *rep.header_lines(meta), ""]
    out += [
        f"The job's monitor (`default_monitor`, alpha = {ALPHA}, Holm across its "
        f"{len(res['tests'])} tests) with a reference of {REFERENCE_EVENTS:,} events "
        f"(the job's default), on traffic from `streams.simulator` ({plan['pool']:,}-event "
        "pools resampled with replacement, so stationary windows are exactly stationary).",
        "",
        f"### False alarms per 1,000 stationary windows ({fa['windows_per_size']:,} windows "
        f"per size: {plan['references']} fresh references x {plan['windows_per_reference']} "
        "windows)",
        "",
        f"Declared: {1000 * ALPHA:.0f} per 1,000 for the monitor, and for each test judged "
        f"alone at alpha. In brackets: the {1 - CONFIDENCE:.0%} and {CONFIDENCE:.0%} "
        "quantiles of a bootstrap over references (windows sharing a reference are "
        "correlated, so a plain binomial bound would be too narrow). A rate is **above** "
        f"the declared one only where even the {1 - CONFIDENCE:.0%} quantile exceeds it.",
        "",
    ]
    by = {(r["test"], r["window"]): r for r in fa["rows"]}
    rows = []
    for test in ["monitor", *res["tests"]]:
        cells = []
        for n in sizes:
            r = by[(test, n)]
            flag = " **above**" if r["above_declared"] else ""
            cells.append(
                f"{r['per_1000']:.1f} [{r['lower_bound_per_1000']:.1f}, "
                f"{r['upper_bound_per_1000']:.1f}]{flag}"
            )
        name = "**monitor (any alert, Holm)**" if test == "monitor" else test + " alone"
        rows.append([name, *cells])
    out.append(rep.table(["test", *[f"window {n:,}" for n in sizes]], rows))
    above = [r for r in fa["rows"] if r["above_declared"]]
    out += [
        "",
        "No rate is above the declared one."
        if not above
        else "Above the declared rate: "
        + ", ".join(
            f"{r['test']} at {r['window']:,} ({r['per_1000']:.1f} per 1,000, "
            f"{r['per_1000'] / r['declared_per_1000']:.2f}x the declared rate)"
            for r in above
        )
        + ".",
        "",
        f"#### The rate one deployment sees: per reference (windows of {SPREAD_WINDOW:,})",
        "",
        "A deployment keeps one reference for many windows, so it sees the rate given "
        "that reference. The p-values include the reference's own sampling error on "
        "average, but a reference no larger than the window moves every window's "
        "statistic the same way, so the rate per reference scatters around alpha; a "
        "larger reference (e.g. a Parquet training set) pins it to alpha. "
        f"{plan['spread_references']} references of each size x {plan['spread_windows']} "
        f"windows, tests alone at alpha (a per-reference rate from {plan['spread_windows']} "
        "windows carries binomial noise of its own: a reference whose true rate is exactly "
        f"{1000 * ALPHA:.0f} per 1,000 shows {3000 * ALPHA:.0f} or more in about "
        f"{noisy:.0%} of cases):",
        "",
    ]
    out.append(
        rep.table(
            ["test", "reference", "per 1,000 (all)", "median reference",
             "90th percentile reference", "worst reference"],
            [[r["test"], f"{r['reference']:,}", f"{r['per_1000']:.1f}",
              f"{r['median_per_1000']:.1f}", f"{r['p90_per_1000']:.1f}",
              f"{r['max_per_1000']:.1f}"] for r in res["reference_spread"]],
        )  # fmt: skip
    )
    out += [
        "",
        "### Detection delay (events from the shift to the end of the first window that "
        "alerts on the shifted column)",
        "",
        f"Each stream holds {plan['delay_windows_before']} windows of stationary events "
        f"and then shifted ones, for {plan['delay_horizon']} more windows; "
        f"{plan['delay_repeats']} seeded streams per cell. Median delay in events "
        "(detected streams / streams); '-' means no stream alerted within the horizon.",
        "",
    ]
    dsizes = plan["delay_window_sizes"]
    dby = {(d["column"], d["kind"], d["magnitude"], d["window"]): d for d in res["delays"]}
    rows = []
    for column, kind, mags in SHIFTS:
        for mag in mags:
            cells = []
            for n in dsizes:
                d = dby[(column, kind, mag, n)]
                med = d["median_delay_events"]
                cells.append(
                    f"{med:,.0f} ({d['detected']}/{d['streams']})"
                    if med is not None
                    else f"- (0/{d['streams']}, > {d['horizon_events']:,})"
                )
            rows.append([f"{kind} `{column}`", label(kind, mag), *cells])
    out.append(rep.table(["shift", "size", *[f"window {n:,}" for n in dsizes]], rows))
    fa_before = sum(d["false_alarms_before"] for d in res["delays"])
    win_before = sum(d["windows_before"] for d in res["delays"])
    out += [
        "",
        f"Alerts on the shifted column in windows wholly before the shift: {fa_before} of "
        f"{win_before}.",
        "",
        "### Drift statistic over time",
        "",
        "![drift over time](drift_over_time.png)",
        "",
        f"`drift_over_time.png`: one stream of {res['over_time']['windows']} windows of "
        f"{res['over_time']['window']:,} events; from window {res['over_time']['shift_window']} "
        "on, the latency mean moves 0.2 sd and the query embedding shifts 0.5 noise units. "
        "Dashed: the threshold (or level) at which the monitor alerts in that window, after "
        "the Holm correction; circles: alerts.",
    ]
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke version (~30 s)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=rep.RESULTS)
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite drift_quality.md and the plot from drift_quality.json, run nothing",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        saved = json.loads((args.out / "drift_quality.json").read_text())
        plot(saved["results"]["over_time"], args.out / "drift_over_time.png")
        (args.out / "drift_quality.md").write_text(markdown(saved["results"], saved["meta"]))
        return 0
    rep.pin_threads(MODULE, argv)
    plan = PLANS["quick" if args.quick else "full"]
    started = time.perf_counter()
    mach = rep.machine()
    config = default_monitor(alpha=ALPHA)
    rep.log(TAG, f"simulating a {plan.pool:,}-event stationary pool")
    stages: dict[str, float] = {}

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        stages[name] = round(time.perf_counter() - t, 1)
        return out

    pool = stage("simulate", lambda: simulate(plan.pool, args.seed))
    fa = stage("false_alarms", lambda: false_alarms(plan, config, pool, args.seed))
    spread = stage("reference_spread", lambda: reference_spread(plan, pool, args.seed))
    dl = stage("delays", lambda: delays(plan, config, pool, args.seed))
    trace = stage("over_time", lambda: over_time(plan, config, pool, args.seed))
    args.out.mkdir(parents=True, exist_ok=True)
    plot(trace, args.out / "drift_over_time.png")
    res = {
        "tests": [f"{c}:{s}" for c, s in config.tests()],
        "false_alarms": fa,
        "reference_spread": spread,
        "delays": dl,
        "over_time": trace,
    }
    meta = {
        "benchmark": "drift_quality",
        "mode": "quick" if args.quick else "full",
        "date": rep.now_utc(),
        "command": rep.command(MODULE, argv),
        "machine": mach,
        "versions": rep.versions(),
        "alpha": ALPHA,
        "reference_events": REFERENCE_EVENTS,
        "plan": asdict(plan),
        "shifts": SHIFTS,
        "duration_s": time.perf_counter() - started,
        "stages_s": stages,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    rep.write_json(args.out / "drift_quality.json", {"meta": meta, "results": res})
    (args.out / "drift_quality.md").write_text(markdown(res, meta))
    rep.log(TAG, f"wrote {args.out}/drift_quality.{{json,md}} and drift_over_time.png "
                 f"in {meta['duration_s']:.0f} s")  # fmt: skip
    monitor = [r for r in fa["rows"] if r["test"] == "monitor"]
    for r in monitor:
        rep.log(TAG, f"monitor false alarms at window {r['window']}: {r['per_1000']:.1f} per "
                     f"1,000 (declared {r['declared_per_1000']:.0f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
