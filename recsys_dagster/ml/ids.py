"""Dense integer ids: where given ids sit in a sorted id array, and factor tables as matrices."""

from __future__ import annotations

import numpy as np


def positions(sorted_ids: np.ndarray, wanted) -> tuple[np.ndarray, np.ndarray]:
    """(pos, found): pos[j] is where wanted[j] sits in the ascending `sorted_ids`; found[j]
    says whether it is there at all (pos is then only meaningful where found)."""
    wanted = np.asarray(wanted, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, wanted)
    found = pos < sorted_ids.size
    found[found] = sorted_ids[pos[found]] == wanted[found]
    return pos, found


def require_positions(sorted_ids: np.ndarray, wanted, what: str) -> np.ndarray:
    """positions() of ids that must all be present; a missing one is an error naming `what`."""
    pos, found = positions(sorted_ids, wanted)
    if not found.all():
        missing = np.asarray(wanted)[~found][:5].tolist()
        raise ValueError(f"{what}: ids {missing} are missing")
    return pos


def factor_matrix(factors) -> tuple[np.ndarray, np.ndarray]:
    """(ids ascending, float32 matrix) from an (idx, features) Spark DataFrame; collected to
    the driver, so only for tables that are small by construction (a catalogue's factors)."""
    pdf = factors.select("idx", "features").toPandas().sort_values("idx", kind="stable")
    ids = pdf["idx"].to_numpy(dtype=np.int64)
    if len(pdf) == 0:
        return ids, np.zeros((0, 0), dtype=np.float32)
    return ids, np.stack(pdf["features"].to_numpy()).astype(np.float32)
