"""Runs inside the alibi-detect venv (numpy<2): never imported by driftline.

    python alibi_worker.py --versions          # JSON of the versions in this env
    python alibi_worker.py JOB.json OUT.json   # run the tasks of JOB, write OUT

JOB: ``{"threads": int | null, "tasks": [TASK, ...]}``. A TASK names two ``.npy`` files,
``ref`` (m,) or (m, d) and ``windows`` (k, n) or (k, n, d), and:

- ``name``: echoed back;
- ``detector``: ``"ks"`` (KSDrift) or ``"mmd"`` (MMDDrift, PyTorch backend, CPU);
- ``p_val``: the detector's level;
- ``n_permutations``, ``sigma`` (null: alibi's median heuristic on the reference),
  ``dtype`` (``"float32"`` or ``"float64"``): MMD only;
- ``seed``: seeds torch and numpy before each window, so permutations repeat;
- ``max_windows`` / ``time_budget_s``: stop early (timing runs of costly configs).

OUT: ``{"versions": {...}, "tasks": [{"name", "fit_s", "predict_s": [...], "p_val": [...],
"distance": [...], "is_drift": [...], "threshold", "n_done"}]}``. Progress goes to
stderr. Each detector is fitted once per task; ``predict_s`` times ``predict`` alone.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np


def versions() -> dict[str, Any]:
    import importlib.metadata as md

    out: dict[str, Any] = {"python": sys.version.split()[0]}
    for dist in ("alibi-detect", "numpy", "scipy", "torch"):
        try:
            out[dist.replace("-", "_")] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist.replace("-", "_")] = None
    return out


def _progress(name: str, done: int, total: int, started: float, last: list[float]) -> None:
    now = time.perf_counter()
    if done < total and now - last[0] < 0.5:
        return
    last[0] = now
    elapsed = now - started
    print(
        f"\r[alibi] {name}: {done}/{total} windows, {elapsed:6.1f} s",
        end="\n" if done == total else "",
        file=sys.stderr,
        flush=True,
    )


def _detector(task: dict[str, Any], ref: np.ndarray) -> Any:
    if task["detector"] == "ks":
        from alibi_detect.cd import KSDrift

        return KSDrift(ref.reshape(ref.shape[0], -1), p_val=task["p_val"])
    if task["detector"] == "mmd":
        from alibi_detect.cd import MMDDrift

        sigma = task.get("sigma")
        return MMDDrift(
            ref,
            backend="pytorch",
            p_val=task["p_val"],
            n_permutations=int(task.get("n_permutations", 100)),
            sigma=None if sigma is None else np.array([sigma], dtype=ref.dtype),
            configure_kernel_from_x_ref=sigma is None,
            device="cpu",
        )
    raise ValueError(f"unknown detector {task['detector']!r}")


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    ref, windows = np.load(task["ref"]), np.load(task["windows"], mmap_mode="r")
    dtype = np.dtype(task.get("dtype", "float32") if task["detector"] == "mmd" else "float64")
    ref = ref.astype(dtype)
    seed = int(task.get("seed", 0))
    limit = min(len(windows), int(task.get("max_windows") or len(windows)))
    budget = float(task.get("time_budget_s") or "inf")

    t0 = time.perf_counter()
    det = _detector(task, ref)
    fit_s = time.perf_counter() - t0

    out: dict[str, Any] = {
        "name": task["name"],
        "fit_s": fit_s,
        "predict_s": [],
        "p_val": [],
        "distance": [],
        "is_drift": [],
    }
    started = time.perf_counter()
    last = [0.0]
    for k in range(limit):
        if task["detector"] == "mmd":
            import torch

            torch.manual_seed(seed + k)
        np.random.seed((seed + k) % 2**32)
        x = np.asarray(windows[k], dtype=dtype)
        x = x.reshape(x.shape[0], -1) if task["detector"] == "ks" else x
        t = time.perf_counter()
        pred = det.predict(x, return_p_val=True, return_distance=True)
        out["predict_s"].append(time.perf_counter() - t)
        d = pred["data"]
        out["p_val"].append(float(np.min(d["p_val"])))
        out["distance"].append(float(np.max(d["distance"])))
        out["is_drift"].append(bool(d["is_drift"]))
        out["threshold"] = float(np.asarray(d["threshold"]).min())
        _progress(task["name"], k + 1, limit, started, last)
        if k + 1 < limit and time.perf_counter() - started > budget:
            print(" (time budget reached)", file=sys.stderr)
            break
    out["n_done"] = len(out["predict_s"])
    return out


def main(argv: list[str]) -> int:
    if argv == ["--versions"]:
        print(json.dumps(versions()))
        return 0
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        job = json.load(fh)
    if job.get("threads"):
        try:
            import torch

            torch.set_num_threads(int(job["threads"]))
        except ImportError:
            pass
    # Import up front so no task's fit time includes loading the packages.
    import alibi_detect.cd  # noqa: F401

    if any(t["detector"] == "mmd" for t in job["tasks"]):
        import alibi_detect.cd.pytorch.mmd  # noqa: F401
    results = [run_task(task) for task in job["tasks"]]
    with open(argv[1], "w") as fh:
        json.dump({"versions": versions(), "tasks": results}, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
