"""Paired bootstrap between two models scored on the same samples."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from jaflow.errors import DataError


@dataclass(frozen=True)
class PairedBootstrap:
    n: int
    mean_a: float
    mean_b: float
    diff: float  # mean_a - mean_b
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool

    def as_dict(self) -> dict:
        return asdict(self)


def paired_bootstrap(
    a: pd.Series, b: pd.Series, *, n_resamples: int = 10_000, alpha: float = 0.05, seed: int = 1234
) -> PairedBootstrap:
    """Resample documents (with replacement) and recompute the mean difference a − b.

    `a` and `b` are per-document metric values indexed by doc_id; only documents both models
    were scored on count. The two-sided p-value is twice the share of resampled differences on
    the far side of zero; the difference is significant when the (1 − alpha) percentile
    interval excludes zero.
    """
    common = a.index.intersection(b.index)
    if len(common) == 0:
        raise DataError("paired bootstrap: the two models share no doc_id")
    x = a.loc[common].to_numpy(dtype=float)
    y = b.loc[common].to_numpy(dtype=float)
    d = x - y
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):  # chunks keep memory flat for large test sets
        stop = min(start + 1000, n_resamples)
        idx = rng.integers(0, len(d), size=(stop - start, len(d)))
        means[start:stop] = d[idx].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0))))
    return PairedBootstrap(
        n=len(d),
        mean_a=float(x.mean()),
        mean_b=float(y.mean()),
        diff=float(d.mean()),
        ci_low=float(low),
        ci_high=float(high),
        p_value=p,
        significant=bool(low > 0 or high < 0),
    )
