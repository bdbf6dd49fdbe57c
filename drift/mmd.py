"""Maximum mean discrepancy on embeddings with random Fourier features.

A Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 s^2)) is approximated by
phi(x) = sqrt(2/D) [cos(x W), sin(x W)], W ~ N(0, I / s^2), so that
E[phi(x) . phi(y)] = k(x, y) and MMD^2 ~= |mean phi(ref) - mean phi(win)|^2. The
window state is then (sum of phi, count): O(D), mergeable, no pairwise kernel.

Null: the difference of the two means is ~ N(0, S (1/n + 1/m)) with S the covariance
of phi on the reference, so MMD^2 / (1/n + 1/m) ~ sum_i l_i chi2_1 with l_i the
eigenvalues of S (computed once at fit). That weighted sum is approximated by a
shifted, scaled chi-square matching its first three cumulants (Liu, Tang & Zhang
2009); the two-moment Welch-Satterthwaite match is available but has a lighter tail
than the truth, so it alarms a little too often at small alpha.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats
from scipy.spatial.distance import pdist

from drift.base import Accumulator, DriftTest, FittedTest
from drift.errors import DriftConfigError, DriftInputError
from drift.inputs import clean_embedding

CHUNK = 8192  # rows per feature-map block: bounds memory at CHUNK x D floats

NullApprox = Literal["ltz", "satterthwaite"]


@dataclass
class FeatureMoments(Accumulator):
    """Sum of the feature vectors and of the raw embeddings."""

    phi_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    x_sum: np.ndarray = field(default_factory=lambda: np.zeros(0))


def median_bandwidth(x: np.ndarray, rng: np.random.Generator, sample: int = 1000) -> float:
    """Median pairwise distance on up to ``sample`` reference rows (median heuristic)."""
    if x.shape[0] > sample:
        x = x[rng.choice(x.shape[0], size=sample, replace=False)]
    dist = pdist(x)
    dist = dist[dist > 0]
    return float(np.median(dist)) if dist.size else 1.0


def gaussian_kernel(x: np.ndarray, y: np.ndarray, bandwidth: float) -> np.ndarray:
    """Exact Gaussian kernel matrix (for oracles and small checks, O(n m d))."""
    sq = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.exp(-np.maximum(sq, 0.0) / (2.0 * bandwidth**2))


def rff_features(x: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """phi(x) = sqrt(2/D) [cos(x W), sin(x W)]: |phi(x)|^2 = 1 = k(x, x)."""
    proj = x @ freqs
    return np.sqrt(1.0 / freqs.shape[1]) * np.hstack([np.cos(proj), np.sin(proj)])


class FittedMMD(FittedTest[FeatureMoments]):
    statistic = "mmd"
    kind = "embedding"

    def __init__(
        self,
        column: str | None,
        freqs: np.ndarray,
        bandwidth: float,
        mu_ref: np.ndarray,
        eigenvalues: np.ndarray,
        x_mean_ref: np.ndarray,
        x_spread_ref: float,
        n_reference: int,
        null: NullApprox,
        n_reference_missing: int,
    ) -> None:
        super().__init__(column, n_reference, n_reference_missing)
        self.freqs = freqs
        self.bandwidth = bandwidth
        self.mu_ref = mu_ref
        self.eigenvalues = eigenvalues
        self.cumulants = tuple(float((eigenvalues**k).sum()) for k in (1, 2, 3))
        self.x_mean_ref = x_mean_ref
        self.x_spread_ref = x_spread_ref
        self.null = null

    @property
    def dim(self) -> int:
        return int(self.freqs.shape[0])

    @property
    def n_features(self) -> int:
        return 2 * int(self.freqs.shape[1])

    def clean(self, values: Any) -> tuple[np.ndarray, int]:
        return clean_embedding(values, self.column, self.dim)

    def features(self, x: np.ndarray) -> np.ndarray:
        return rff_features(x, self.freqs)

    def feature_sum(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_features)
        for start in range(0, x.shape[0], CHUNK):
            out += self.features(x[start : start + CHUNK]).sum(axis=0)
        return out

    def _init(self) -> FeatureMoments:
        return FeatureMoments(phi_sum=np.zeros(self.n_features), x_sum=np.zeros(self.dim))

    def _update(self, acc: FeatureMoments, clean: np.ndarray) -> None:
        if clean.shape[1] != self.dim:  # numpy input skips the cleaner's check
            raise DriftInputError(
                self.column, f"embedding dimension {clean.shape[1]}, reference {self.dim}"
            )
        acc.phi_sum += self.feature_sum(clean)
        acc.x_sum += clean.sum(axis=0)

    def _merge(self, a: FeatureMoments, b: FeatureMoments) -> FeatureMoments:
        return FeatureMoments(phi_sum=a.phi_sum + b.phi_sum, x_sum=a.x_sum + b.x_sum)

    def null_sf(self, q: float) -> float:
        """P(Q >= q) for Q = sum_i l_i chi2_1, the null of MMD^2 / (1/n + 1/m)."""
        k1, k2, k3 = self.cumulants
        if k2 <= 0:  # a degenerate reference (all rows equal): any movement is drift
            return 1.0 if q <= 0 else 0.0
        if self.null == "satterthwaite":
            g, h = k2 / k1, k1 * k1 / k2
            return float(stats.chi2.sf(q / g, h))
        dof = k2**3 / k3**2  # chi2_dof has the same skewness as Q
        return float(stats.chi2.sf((q - k1) / np.sqrt(k2 / dof) + dof, dof))

    def null_isf(self, alpha: float) -> float:
        """The q with P(Q >= q) = alpha."""
        k1, k2, k3 = self.cumulants
        if k2 <= 0:
            return 0.0
        if self.null == "satterthwaite":
            g, h = k2 / k1, k1 * k1 / k2
            return float(g * stats.chi2.isf(alpha, h))
        dof = k2**3 / k3**2
        return float(k1 + np.sqrt(k2 / dof) * (stats.chi2.isf(alpha, dof) - dof))

    def _threshold(self, acc: FeatureMoments, alpha: float) -> float:
        return (1.0 / acc.n + 1.0 / self.n_reference) * self.null_isf(alpha)

    def _result(self, acc: FeatureMoments) -> tuple[float, float, dict[str, Any]]:
        diff = self.mu_ref - acc.phi_sum / acc.n
        mmd2 = float(diff @ diff)
        scale = 1.0 / acc.n + 1.0 / self.n_reference
        p_value = self.null_sf(mmd2 / scale)
        shift = acc.x_sum / acc.n - self.x_mean_ref
        shift_norm = float(np.linalg.norm(shift))
        details = {
            "mean_shift_norm": shift_norm,
            "mean_shift_relative": shift_norm / self.x_spread_ref
            if self.x_spread_ref > 0
            else None,
            "null_mean": scale * self.cumulants[0],
            "bandwidth": self.bandwidth,
            "n_features": self.n_features,
            "null_approximation": self.null,
        }
        return mmd2, p_value, details


def _feature_moments(freqs: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of phi over ``x`` and the eigenvalues of its covariance.

    With more rows than features, the D x D covariance is accumulated in blocks; with
    fewer, the nonzero eigenvalues come from the smaller m x m centred Gram matrix.
    """
    m, dim = x.shape[0], 2 * freqs.shape[1]
    if m < dim:
        phi = rff_features(x, freqs)
        mu = phi.mean(axis=0)
        centred = phi - mu
        eig = np.linalg.eigvalsh(centred @ centred.T / m)
    else:
        phi_sum, gram = np.zeros(dim), np.zeros((dim, dim))
        for start in range(0, m, CHUNK):
            phi = rff_features(x[start : start + CHUNK], freqs)
            phi_sum += phi.sum(axis=0)
            gram += phi.T @ phi
        mu = phi_sum / m
        eig = np.linalg.eigvalsh(gram / m - np.outer(mu, mu))
    return mu, np.clip(eig, 0.0, None)


@dataclass(frozen=True)
class MMD(DriftTest):
    """RFF Gaussian-kernel MMD^2.

    ``n_features`` (D, even) sets the approximation; ``seed`` fixes the frequencies and
    the bandwidth subsample so a profile is reproducible; ``bandwidth=None`` means the
    median heuristic on the reference.
    """

    n_features: int = 256
    seed: int = 0
    bandwidth: float | None = None
    null: NullApprox = "ltz"
    statistic = "mmd"
    kind = "embedding"

    def __post_init__(self) -> None:
        if self.n_features < 2 or self.n_features % 2:
            raise DriftConfigError(
                "mmd.n_features", f"must be even and >= 2, got {self.n_features}"
            )
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise DriftConfigError("mmd.bandwidth", f"must be > 0, got {self.bandwidth}")

    def params(self) -> dict[str, Any]:
        return {
            "n_features": self.n_features,
            "seed": self.seed,
            "bandwidth": self.bandwidth,
            "null": self.null,
        }

    def _fit(self, reference: np.ndarray, column: str | None, n_missing: int) -> FittedMMD:
        rng = np.random.default_rng(self.seed)
        m, d = reference.shape
        bandwidth = self.bandwidth or median_bandwidth(reference, rng)
        freqs = rng.standard_normal((d, self.n_features // 2)) / bandwidth
        mu, eig = _feature_moments(freqs, reference)
        x_mean = reference.mean(axis=0)
        spread = float(np.sqrt(reference.var(axis=0).sum()))
        return FittedMMD(column, freqs, bandwidth, mu, eig, x_mean, spread, m, self.null, n_missing)
