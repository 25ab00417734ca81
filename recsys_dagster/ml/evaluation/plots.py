"""PNG plots of tuning trials and per-segment metrics (matplotlib, Agg backend)."""

from __future__ import annotations

import io

import pandas as pd


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def tuning_plot(trials: pd.DataFrame, metric: str) -> bytes:
    """Validation score against alpha, one marker style per weighting, size by rank."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for weighting, group in trials.groupby("weighting"):
        axes[0].scatter(group.alpha, group.score, s=group["rank"] / 2, label=weighting, alpha=0.7)
        axes[1].scatter(group.reg_param, group.score, s=group["rank"] / 2, label=weighting,
                        alpha=0.7)
    for ax, x in zip(axes, ("alpha", "reg_param")):
        ax.set_xscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(f"validation {metric}")
        ax.grid(alpha=0.3)
    axes[0].legend(title="weighting (size = rank)")
    fig.suptitle(f"ALS tuning: {len(trials)} trials")
    return _png(fig)


def segment_plot(table: pd.DataFrame, metric: str) -> bytes:
    """The metric per user-activity segment, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seg = table[(table.metric == metric) & (table.segment != "all")
                & (~table.model.str.contains("-"))]
    wide = seg.pivot(index="segment", columns="model", values="value").reindex(
        ["light", "medium", "heavy"])
    fig, ax = plt.subplots(figsize=(6, 4))
    wide.plot.bar(ax=ax, rot=0)
    ax.set_ylabel(f"{metric}@{int(table.k.iloc[0])}")
    ax.set_xlabel("listener segment (training items, terciles)")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)
