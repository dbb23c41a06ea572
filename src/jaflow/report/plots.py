"""Plots with matplotlib (Agg): radar charts, training curves, sweep plots."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from jaflow.errors import DataError  # noqa: E402
from jaflow.io import atomic_path  # noqa: E402

DPI = 100


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        # no timestamp or software tag: same inputs, same bytes
        fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    plt.close(fig)
    return path


def radar(
    scores: pd.DataFrame,
    axes: Sequence[str],
    path: str | Path,
    *,
    title: str = "",
    vmax: float | None = 10.0,
    labels: dict[str, str] | None = None,
) -> Path:
    """One polygon per row of `scores` (rows = models, columns include `axes`).

    The first axis is at the top and the rest go clockwise, as FastChat's radar does.
    """
    labels = labels or {}
    n = len(axes)
    if n < 3:
        raise DataError(f"radar chart {path}: needs at least 3 axes, got {list(axes)}")
    angles = [2 * math.pi * i / n for i in range(n)]
    fig = plt.figure(figsize=(6, 6))
    ax = fig.add_subplot(projection="polar")
    ax.set_theta_offset(math.pi / 2)
    ax.set_theta_direction(-1)
    closed = angles + angles[:1]
    data = scores.reindex(columns=list(axes)).to_numpy(dtype=float)
    top = (
        vmax
        if vmax is not None
        else (float(np.nanmax(data)) * 1.1 if np.isfinite(data).any() else 1.0) or 1.0
    )
    for model, row in zip(scores.index, data, strict=True):
        if np.isnan(row).all():
            continue  # no valid rating at all: nothing to draw
        vals = list(row)  # a missing category leaves a gap in the polygon
        ax.plot(closed, vals + vals[:1], marker="o", linewidth=1.5, label=labels.get(model, model))
        if not np.isnan(row).any():
            ax.fill(closed, vals + vals[:1], alpha=0.1)
    if np.isnan(data).all():
        ax.text(0, 0, "no valid ratings", ha="center", va="center", color="tab:red")
    ax.set_xticks(angles)
    ax.set_xticklabels([labels.get(a, a) for a in axes])
    ax.tick_params(axis="x", pad=10)
    ax.set_ylim(0, top)
    if title:
        ax.set_title(title, pad=20)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.12), fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def training_curves(
    history: pd.DataFrame,
    path: str | Path,
    *,
    title: str = "",
    selected_step: int | None = None,
    lisa: pd.DataFrame | None = None,
) -> Path:
    """Train/eval loss against step (selected checkpoint marked), learning rate, LISA layers."""
    panels = 2 + (lisa is not None and not lisa.empty)
    fig, axes = plt.subplots(panels, 1, figsize=(7, 2.6 * panels + 0.6), sharex=True)
    loss_ax, lr_ax = axes[0], axes[1]
    plotted = False
    for col, style in (
        ("train_loss", ".-"),
        ("eval_loss", "o-"),
    ):  # markers: a single logged point still shows
        if col in history and history[col].notna().any():
            rows = history[history[col].notna()]
            loss_ax.plot(rows["step"], rows[col], style, label=col.replace("_", " "), markersize=3)
            plotted = True
    if not plotted:
        raise DataError(f"training curves {path}: the log has no train_loss or eval_loss values")
    if selected_step is not None:
        loss_ax.axvline(
            selected_step,
            color="tab:red",
            linestyle="--",
            linewidth=1,
            label=f"selected (step {selected_step})",
        )
    loss_ax.set_ylabel("loss")
    loss_ax.legend(fontsize="small")
    if title:
        loss_ax.set_title(title)
    if "learning_rate" in history and history["learning_rate"].notna().any():
        rows = history[history["learning_rate"].notna()]
        lr_ax.plot(rows["step"], rows["learning_rate"], ".-", color="tab:green")
    lr_ax.set_ylabel("learning rate")
    if panels == 3:
        # a layer set stays active from its step until the next re-sampling
        starts = sorted(lisa["step"].unique())
        last = max(float(history["step"].max()), float(starts[-1]) + 1)
        ends = dict(zip(starts, [*starts[1:], last], strict=True))
        axes[2].hlines(
            lisa["layer"], lisa["step"], lisa["step"].map(ends), color="tab:purple", linewidth=6
        )
        axes[2].yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axes[2].set_ylabel("active layers (LISA)")
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    return _save(fig, path)


def sweep_frame(values: pd.Series, points: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Rows of a sweep's points: one column per parameter plus `value` and `model`.

    `values` is a table column indexed by model; `points` maps each point's model to its
    parameter values (given by the config, never read back from the model's name).
    """
    rows = []
    for model, params in points.items():
        v = values.get(model)
        if v is not None and pd.notna(v):
            rows.append(
                {**{k: _plain(x) for k, x in params.items()}, "value": float(v), "model": model}
            )
    return pd.DataFrame(rows)


def _plain(v: Any) -> float | str:
    """A value a plot axis can hold: numbers as floats, anything else as its spelling."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        from jaflow.config.sweeps import format_value

        return v if isinstance(v, str) else format_value(v)
    return float(v)


def published_vs_reproduced(
    points: list[dict[str, Any]], path: str | Path, *, title: str = ""
) -> Path:
    """Each published number (x) against the reproduced one (y, with its stderr), and the diagonal."""
    shown = [p for p in points if p["reproduced"] is not None]
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    if not shown:  # e.g. a judge whose every rating failed: say so rather than fail the report
        ax.text(
            0.5,
            0.5,
            "no reproduced value for any published number",
            ha="center",
            va="center",
            color="tab:red",
            transform=ax.transAxes,
        )
        ax.set_title(title)
        return _save(fig, path)
    xs = [p["published"] for p in shown]
    ys = [p["reproduced"] for p in shown]
    errs = [p["stderr"] if p["stderr"] is not None else 0.0 for p in shown]
    for model in dict.fromkeys(p["label"] for p in shown):
        sel = [i for i, p in enumerate(shown) if p["label"] == model]
        ax.errorbar(
            [xs[i] for i in sel],
            [ys[i] for i in sel],
            yerr=[errs[i] for i in sel],
            fmt="o",
            capsize=3,
            label=model,
        )
    for p in shown:
        ax.annotate(
            p["column"],
            (p["published"], p["reproduced"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize="small",
        )
    lo = min(min(xs), min(y - e for y, e in zip(ys, errs, strict=True)))
    hi = max(max(xs), max(y + e for y, e in zip(ys, errs, strict=True)))
    pad = (hi - lo) * 0.08 or 0.05
    ax.plot(
        [lo - pad, hi + pad],
        [lo - pad, hi + pad],
        "--",
        color="grey",
        linewidth=1,
        label="reproduced = published",
    )
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("published (model card)")
    ax.set_ylabel("reproduced (this run, ± stderr)")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def sweep_lines(points: pd.DataFrame, metric: str, path: str | Path, *, title: str = "") -> Path:
    """The metric against each swept parameter (mean over the other parameters, with min–max)."""
    params = [c for c in points.columns if c not in ("value", "model")]
    if not params:
        raise DataError(f"sweep plot {path}: no swept parameters")
    fig, axes = plt.subplots(1, len(params), figsize=(4 * len(params), 3.4), squeeze=False)
    for ax, p in zip(axes[0], params, strict=True):
        g = points.groupby(p)["value"].agg(["mean", "min", "max"]).sort_index()
        x = list(range(len(g))) if g.index.dtype == object else g.index.to_numpy(dtype=float)
        ax.plot(x, g["mean"], "o-")
        ax.fill_between(x, g["min"], g["max"], alpha=0.2)
        if g.index.dtype == object:
            ax.set_xticks(x)
            ax.set_xticklabels(g.index)
        elif len(g) > 2 and g.index.min() > 0 and g.index.max() / g.index.min() >= 100:
            ax.set_xscale("log")
        ax.set_xlabel(p)
        ax.set_ylabel(metric)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def sweep_heatmap(
    points: pd.DataFrame, x: str, y: str, metric: str, path: str | Path, *, title: str = ""
) -> Path:
    """Heat map of the metric over two swept parameters (mean over any others)."""
    grid = (
        points.pivot_table(index=y, columns=x, values="value", aggfunc="mean")
        .sort_index()
        .sort_index(axis=1)
    )
    fig, ax = plt.subplots(figsize=(1.2 * grid.shape[1] + 3, 0.8 * grid.shape[0] + 2))
    im = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(grid.shape[1]))
    ax.set_xticklabels([_fmt(v) for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]))
    ax.set_yticklabels([_fmt(v) for v in grid.index])
    lo, hi = (
        float(np.nanmin(grid.to_numpy(dtype=float))),
        float(np.nanmax(grid.to_numpy(dtype=float))),
    )
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid.iat[i, j]
            if pd.notna(v):
                bright = hi > lo and (v - lo) / (hi - lo) > 0.6  # viridis turns yellow at the top
                ax.text(
                    j,
                    i,
                    f"{v:.3g}",
                    ha="center",
                    va="center",
                    color="black" if bright else "white",
                    fontsize="small",
                )
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    fig.colorbar(im, ax=ax, label=metric)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def _fmt(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"
