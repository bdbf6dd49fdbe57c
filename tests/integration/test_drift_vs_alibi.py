"""driftline's KS and MMD against alibi-detect, the reference implementation, on the same
seeded arrays.

alibi-detect pins numpy<2 and is under the Business Source License, so it never enters
driftline's environment: it runs in its own venv (``make alibi-env``, i.e.
``python -m benchmarks.peers.alibi_env``) through ``benchmarks/peers/alibi_worker.py``,
which reads the arrays from ``.npy`` files and writes its p-values and decisions as JSON.
Skipped, with the reason, when that venv is absent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.peers import alibi_env
from drift import KS, MMD

MISSING = alibi_env.missing_reason()
# MMDDrift needs torch, which the venv holds only where a local wheel (or a download) gave it
HAS_TORCH = bool(((alibi_env.status() or {}).get("versions") or {}).get("torch"))
pytestmark = [
    pytest.mark.alibi,
    pytest.mark.skipif(MISSING is not None, reason=MISSING or ""),
]

ALPHA = 0.01
DIM = 16
KS_CASES = [(3000, 400), (20_000, 2500)]  # reference, window: both on the asymptotic null
MMD_M, MMD_N, MMD_K = 400, 200, 100  # reference, window, windows per group


def ks_case(m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([m, n])
    ref = rng.lognormal(7.0, 0.45, m)
    windows = rng.lognormal(7.0, 0.45, (60, n))
    windows[30:] *= np.linspace(1.0, 1.12, 30)[:, None]  # from no drift to plain drift
    return ref, windows


def mmd_case() -> tuple[np.ndarray, np.ndarray]:
    """100 windows without drift, then 100 moved one per-dimension sd along one direction."""
    rng = np.random.default_rng(2024)
    ref = rng.standard_normal((MMD_M, DIM))
    direction = rng.standard_normal(DIM)
    windows = rng.standard_normal((2 * MMD_K, MMD_N, DIM))
    windows[MMD_K:] += direction / np.linalg.norm(direction)
    return ref, windows


@pytest.fixture(scope="module")
def alibi(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every alibi-detect task of this module, run by one worker on exactly our arrays."""
    tmp = tmp_path_factory.mktemp("alibi")
    tasks: list[dict[str, Any]] = []

    def add(task: dict[str, Any], ref: np.ndarray, windows: np.ndarray) -> None:
        ref_path, win_path = tmp / f"{task['name']}_ref.npy", tmp / f"{task['name']}_win.npy"
        np.save(ref_path, ref)
        np.save(win_path, windows)
        tasks.append({**task, "ref": str(ref_path), "windows": str(win_path)})

    for m, n in KS_CASES:
        add({"name": f"ks_{m}_{n}", "detector": "ks", "p_val": ALPHA}, *ks_case(m, n))
    if HAS_TORCH:
        ref, windows = mmd_case()
        mmd_task = {
            "name": "mmd",
            "detector": "mmd",
            "p_val": ALPHA,
            "n_permutations": 100,
            "sigma": MMD().fit(ref).bandwidth,  # the same Gaussian kernel as driftline's
            "seed": 7,
        }
        add(mmd_task, ref, windows)
    out = alibi_env.run_worker({"threads": 1, "tasks": tasks}, timeout=1800)
    assert out["versions"]["alibi_detect"] == alibi_env.ALIBI_VERSION
    results = {t["name"]: t for t in out["tasks"]}
    for task in tasks:
        assert results[task["name"]]["n_done"] == len(np.load(task["windows"], mmap_mode="r"))
    return results


@pytest.mark.parametrize(("m", "n"), KS_CASES)
def test_ks_p_values_and_decisions_match_alibi_ksdrift(
    alibi: dict[str, dict[str, Any]], m: int, n: int
) -> None:
    ref, windows = ks_case(m, n)
    fitted = KS().fit(ref)
    ours = [fitted.test(w, alpha=ALPHA) for w in windows]
    assert all(r.details["p_value_method"] == "asymptotic" for r in ours)  # alibi's method
    theirs = alibi[f"ks_{m}_{n}"]

    d_ours = np.array([r.value for r in ours])
    p_ours = np.array([r.p_value for r in ours])
    d_theirs, p_theirs = np.array(theirs["distance"]), np.array(theirs["p_val"])
    # alibi keeps statistic and p-value in float32: compare at that precision
    np.testing.assert_allclose(d_ours, d_theirs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(p_ours, p_theirs, rtol=1e-5, atol=1e-7)
    # equal decisions (alibi flags p < alpha, driftline p <= alpha: no tie in these data)
    assert [r.drifted for r in ours] == theirs["is_drift"]
    assert 0 < sum(theirs["is_drift"]) < len(windows)  # both outcomes occur


@pytest.mark.skipif(not HAS_TORCH, reason="the alibi venv has no torch (MMDDrift's backend)")
def test_mmd_decisions_agree_with_alibi_mmddrift(alibi: dict[str, dict[str, Any]]) -> None:
    """RFF-MMD with its analytic null vs the exact kernel MMD with a 100-permutation test,
    same Gaussian bandwidth, on 100 windows without drift and 100 with a clear shift."""
    ref, windows = mmd_case()
    fitted = MMD().fit(ref)
    ours = np.array([fitted.test(w, alpha=ALPHA).drifted for w in windows])
    theirs = np.array(alibi["mmd"]["is_drift"])

    without, with_drift = slice(0, MMD_K), slice(MMD_K, 2 * MMD_K)
    assert np.mean(ours[without] == theirs[without]) >= 0.95
    assert np.mean(ours[with_drift] == theirs[with_drift]) >= 0.95
    assert np.mean(ours == theirs) >= 0.95
    # the comparison means something: both see the shift, neither alarms at will
    assert ours[with_drift].mean() >= 0.9 and theirs[with_drift].mean() >= 0.9
    assert ours[without].mean() <= 0.05 and theirs[without].mean() <= 0.05
