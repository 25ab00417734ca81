"""A listener's served recommendations, why each one (the plays that contributed most to its
score, ml/serving/explain.py), and recommendations for a listener the model has never seen
(folded in from their plays against the served item factors). No Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..ml.als.confidence import confidence_values
from ..ml.als.kernels import solve_exact
from ..ml.serving.explain import contributions, top_reasons
from ..ml.serving.topk import top_k_rows
from ..tables import TableStore
from .model import SERVED_TABLE, ServedLookupError, ServedModel, closest, read_where, require

REASONS = 3


def served_list(store: TableStore, user_id: str, n: int) -> pd.DataFrame:
    """rank, item_id, score, folded_in of the listener's served list, best first."""
    path = require(store, SERVED_TABLE)
    rows = read_where(path, "user_id", str(user_id),
                      ["user_id", "rank", "item_id", "score", "folded_in"])
    if rows.empty:
        users = (read_where(store.current_path("user_index"), "id", str(user_id), ["id"])
                 if store.exists("user_index") else pd.DataFrame())
        if len(users):
            raise ServedLookupError(f"listener {user_id!r} has no served recommendations yet "
                                    "(they arrived after the last publication: "
                                    "refresh_recommendations folds them in)")
        ids = store.read_pandas("user_index").id.astype(str).tolist()
        raise ServedLookupError(f"no listener {user_id!r}; closest ids: {closest(user_id, ids)}"
                                "; a listener never seen: recommend --plays FILE")
    return rows.sort_values("rank").head(n).reset_index(drop=True)


def explain(model: ServedModel, user_id: str, items: list[str]) -> list[list[tuple[str, float]]]:
    """For each recommended item, the listener's REASONS plays that contributed most to its
    score, with their contributions (Hu, Koren & Volinsky 2008, section 5)."""
    idx = read_where(model.store.current_path("user_index"), "id", str(user_id), ["id", "idx"])
    if idx.empty:
        raise ServedLookupError(f"no listener {user_id!r} in the served model")
    played, conf = model.plays_of(int(idx.idx.iloc[0]))
    item_ids, y, yty = model.items
    pos = np.searchsorted(item_ids, played)
    known = (pos < item_ids.size) & (item_ids[np.minimum(pos, item_ids.size - 1)] == played)
    if not known.any():
        return [[] for _ in items]
    played, conf, pos = played[known], conf[known], pos[known]
    rec_idx = model.item_index.reindex(items).to_numpy()
    rec_pos = np.searchsorted(item_ids, rec_idx)
    share = contributions(y, yty, pos, conf, rec_pos, *model.regularisation())
    ids = model.item_ids.reindex(played).to_numpy()
    return [[(model.label(ids[j]), float(share[r, j])) for j in best]
            for r, best in enumerate(top_reasons(share, REASONS))]


def read_plays(path: str) -> pd.DataFrame:
    """item_id, plays of a listener: a CSV with a header naming item_id (or item) and plays
    (default 1 a row); rows of one item are summed."""
    try:
        table = pd.read_csv(path, dtype=str)
    except FileNotFoundError:
        raise ServedLookupError(f"no plays file {path}") from None
    item = next((c for c in ("item_id", "item", "song", "artist") if c in table.columns), None)
    if item is None:
        raise ServedLookupError(f"{path}: a CSV with an item_id column (and plays) is needed; "
                                f"got columns {list(table.columns)}")
    plays = (pd.to_numeric(table["plays"], errors="coerce") if "plays" in table
             else pd.Series(1.0, index=table.index))
    if plays.isna().any() or (plays <= 0).any():
        raise ServedLookupError(f"{path}: plays must be positive numbers")
    return (pd.DataFrame({"item_id": table[item].astype(str), "plays": plays})
            .groupby("item_id", as_index=False).plays.sum())


def recommend_new(model: ServedModel, plays: pd.DataFrame, n: int) -> tuple[pd.DataFrame, list]:
    """(rank, item_id, score of the top n) for a listener the model has never seen, and the
    item ids of their plays the model does not know: the listener's vector is the exact ALS
    solve against the served item factors (fold-in), their plays left out of the list."""
    item_ids, y, yty = model.items
    idx = model.item_index.reindex(plays.item_id).to_numpy()
    pos = np.searchsorted(item_ids, np.nan_to_num(idx, nan=-1).astype(np.int64))
    ok = ~np.isnan(idx) & (pos < item_ids.size)
    ok[ok] = item_ids[pos[ok]] == idx[ok].astype(np.int64)
    unknown = plays.item_id[~ok].tolist()
    if not ok.any():
        raise ServedLookupError("none of the plays' items is in the served model; closest: "
                                + closest(str(plays.item_id.iloc[0]), model.item_index.index))
    conf = confidence_values(np.zeros(int(ok.sum()), np.int64), idx[ok].astype(np.int64),
                             plays.plays.to_numpy()[ok], model.confidence())
    x = solve_exact(y, yty, np.array([0, ok.sum()]), pos[ok], conf, *model.regularisation())
    q, r, c, s = top_k_rows(np.array([0]), x, item_ids, y, n, excludes=[idx[ok].astype(int)])
    return pd.DataFrame({"rank": r, "item_id": model.item_ids.reindex(c).to_numpy(),
                         "score": s}), unknown
