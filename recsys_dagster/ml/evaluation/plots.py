"""PNG plots of the tuning study and per-segment metrics (matplotlib, Agg backend)."""

from __future__ import annotations

import io

import pandas as pd


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _optuna_png(plot, study, **kw) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's matplotlib plots are marked experimental
        ax = plot(study, **kw)
    fig = ax.figure
    fig.set_size_inches(8, 4.5)
    return _png(fig)


def history_plot(study, metric: str) -> bytes:
    """The study's validation score per trial, over every run that continued it, with the
    best so far (Optuna's optimisation history)."""
    from optuna.visualization.matplotlib import plot_optimization_history

    return _optuna_png(plot_optimization_history, study, target_name=f"validation {metric}")


def importance_plot(importances: dict[str, float], metric: str) -> bytes:
    """Each searched setting's importance for the validation score, largest on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set_xlabel(f"importance for validation {metric} (share, PED-ANOVA)")
    ax.grid(axis="x", alpha=0.3)
    fig.suptitle("ALS tuning: what mattered")
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
