"""One command for the whole benchmark set (``make bench`` / ``make bench-quick``).

    python -m benchmarks.run            # the standard set (about 45 minutes here)
    python -m benchmarks.run --quick    # a smoke version of each
    python -m benchmarks.run --only drift_cost --only decode
    python -m benchmarks.run --report   # only rebuild RESULTS.md from results/*.md

Each benchmark is its own module with its own ``--quick``; each runs in a fresh
process (so one's threads, JVM or caches never colour another's numbers) and writes
``benchmarks/results/<name>.{json,md}`` plus plots. ``RESULTS.md`` is assembled from
those sections, so it always shows the latest measured run of each, with its command.
A quick run is a smoke test: its files go to ``benchmarks/out/quick/`` and the standard
results stay as they were.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS_DIR = HERE / "results"
QUICK_DIR = HERE / "out" / "quick"

#: (name, module, markdown section it writes), in the order they run and are reported.
BENCHMARKS = [
    ("decode", "benchmarks.bench_decode", "decode.md"),
    ("drain", "benchmarks.drain", "drain.md"),
    ("drain_branches", "benchmarks.drain_branches", "drain_branches.md"),
    ("profile_drain", "benchmarks.profile_drain", "profile_drain.md"),
    ("pipeline", "benchmarks.pipeline", "pipeline.md"),
    ("tiles_cost", "benchmarks.tiles_cost", "tiles_cost.md"),
    ("drift_cost", "benchmarks.drift_cost", "drift.md"),
    ("drift_quality", "benchmarks.drift_quality", "drift_quality.md"),
    ("recovery", "benchmarks.recovery", "recovery.md"),
    ("offline_log", "benchmarks.offline_log", "offline_log.md"),
]

INTRO = """# Benchmark results

Measured by `python -m benchmarks.run` (`make bench`); each section names the machine,
the date, the versions and the exact command that produced it. These machines are
shared and noisy: compare ratios measured in the same run, not absolute figures across
sections. Where driftline misses a target, the section says by how much and why.
"""


#: The reading of the numbers, kept by hand (generated sections only state numbers).
READING = HERE / "READING.md"


def assemble() -> Path:
    sections = [INTRO]
    if READING.exists():
        sections.append(READING.read_text().strip() + "\n")
    for name, module, md in BENCHMARKS:
        path = RESULTS_DIR / md
        if path.exists():
            sections.append(path.read_text().strip() + "\n")
        else:
            sections.append(f"## {name}\n\nNot measured yet: `python -m {module}`.\n")
    out = HERE / "RESULTS.md"
    out.write_text("\n".join(sections))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke versions of each")
    parser.add_argument("--only", action="append", choices=[b[0] for b in BENCHMARKS])
    parser.add_argument("--report", action="store_true", help="only rebuild RESULTS.md")
    args = parser.parse_args(argv)
    failed = []
    if args.quick:
        kept = HERE / "out" / "results-kept"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(RESULTS_DIR, kept)
    if not args.report:
        chosen = [b for b in BENCHMARKS if not args.only or b[0] in args.only]
        for i, (name, module, _) in enumerate(chosen, start=1):
            cmd = [sys.executable, "-m", module, *(["--quick"] if args.quick else [])]
            print(f"\n=== [{i}/{len(chosen)}] {name}: {' '.join(cmd[1:])}", flush=True)
            started = time.monotonic()
            code = subprocess.call(cmd)
            print(f"=== {name}: {'ok' if code == 0 else f'FAILED ({code})'} in "
                  f"{time.monotonic() - started:.0f} s", flush=True)
            if code:
                failed.append(name)
    if args.quick:
        shutil.rmtree(QUICK_DIR, ignore_errors=True)
        shutil.copytree(RESULTS_DIR, QUICK_DIR)
        shutil.rmtree(RESULTS_DIR)
        shutil.move(kept, RESULTS_DIR)
        print(f"\nquick results in {QUICK_DIR} (benchmarks/results unchanged)", flush=True)
    else:
        print(f"\nwrote {assemble()}", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
