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
    the driver through Arrow, the vectors as one flat buffer (no object per row), so only for
    tables that are small by construction (a catalogue's factors)."""
    table = factors.select("idx", "features").toArrow()
    ids = table.column("idx").to_numpy().astype(np.int64)
    matrix = vector_rows(table.column("features"), ids.size)
    order = np.argsort(ids, kind="stable")
    return ids[order], matrix[order]


def vector_rows(column, n: int) -> np.ndarray:
    """An Arrow chunked column of n equal-length float lists as an (n x length) float32
    matrix."""
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    lists = column.combine_chunks()
    if lists.null_count:
        raise ValueError(f"{lists.null_count} of {n} rows have no vector")
    values = lists.flatten().to_numpy(zero_copy_only=False)
    if values.size % n or np.any(np.diff(lists.offsets.to_numpy()) != values.size // n):
        raise ValueError("vectors of different lengths cannot make a matrix")
    return values.astype(np.float32, copy=False).reshape(n, values.size // n)


def with_vectors(columns, vectors: np.ndarray):
    """An Arrow table of the pandas DataFrame `columns` and a last column `features`: the rows
    of `vectors` as float32 lists in a single buffer, for spark.createDataFrame. A Python
    object per row (a list of arrays in pandas) costs seconds at hundreds of thousands."""
    import pyarrow as pa

    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    width = matrix.shape[1] if matrix.ndim == 2 else 0  # no rows: maybe no columns either
    offsets = pa.array(np.arange(len(columns) + 1, dtype=np.int32) * width)
    return pa.Table.from_pandas(columns, preserve_index=False).append_column(
        "features", pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel())))


def vectors_frame(spark, ids: np.ndarray, matrix: np.ndarray, id_type: str = "int"):
    """The (idx, features) Spark DataFrame of the rows of `matrix` (row r: ids[r])."""
    import pandas as pd

    idx = pd.DataFrame({"idx": np.asarray(ids, dtype=np.int32 if id_type == "int" else np.int64)})
    return spark.createDataFrame(with_vectors(idx, matrix), f"idx {id_type}, features array<float>")
