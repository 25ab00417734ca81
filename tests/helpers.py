"""Small helpers shared by tests."""

import shutil
from contextlib import contextmanager

import dagster as dg

from recsys_dagster.pipeline import INGESTION_ASSETS, calendar, config_for, range_tags


class Runs:
    """The runs that made up one materialisation, read like one result."""

    def __init__(self, results):
        self.results = results

    @property
    def success(self):
        return all(r.success for r in self.results)

    @property
    def all_events(self):
        return [e for r in self.results for e in r.all_events]

    def get_asset_check_evaluations(self):
        return [e for r in self.results for e in r.get_asset_check_evaluations()]

    def get_asset_materialization_events(self):
        return [e for r in self.results for e in r.get_asset_materialization_events()]


def materialize(selection, resources, run_config=None, raise_on_error=True, instance=None,
                days=None, assets=None):
    """Materialise a selection of the real Definitions' assets and checks in-process, as the
    CLI does: the ingestion assets for `days` (default: the whole calendar) in one run, then
    the rest as of the calendar's last day. `assets` replaces assets by key (variants)."""
    from recsys_dagster.checks import ALL_CHECKS
    from recsys_dagster.definitions import ASSETS

    defs = list(ASSETS)
    for variant in assets or []:
        defs = [a for a in defs if not set(a.keys) & set(variant.keys)] + [variant]
    names = list(selection) if selection is not None else None
    ingest = [n for n in INGESTION_ASSETS if names is None or n in names]
    rest = ([n for n in names if n not in INGESTION_ASSETS] if names is not None
            else dg.AssetSelection.all() - dg.AssetSelection.assets(*INGESTION_ASSETS))
    results = []
    first, last = days or calendar()
    common = dict(resources=resources, raise_on_error=raise_on_error, instance=instance)
    if ingest:
        results.append(dg.materialize(
            [*defs, *ALL_CHECKS], selection=ingest, tags=range_tags(first, last),
            run_config=config_for(run_config, ingestion=True), **common))
        if not results[-1].success:
            return Runs(results)
    if rest:
        # Only interactions is partitioned after ingestion; a run without it has no days.
        day = calendar()[1] if names is None or "interactions" in names else None
        results.append(dg.materialize(
            [*defs, *ALL_CHECKS], selection=rest, partition_key=day,
            run_config=config_for(run_config, ingestion=False), **common))
    return Runs(results)


def checks_by_name(result):
    return {(e.asset_key.path[-1], e.check_name): e.passed
            for e in result.get_asset_check_evaluations()}


def check_status(instance, asset: str, check: str) -> str | None:
    """The newest execution status of an asset check in an instance (PLANNED: the run planned
    it and never evaluated it, which the UI shows as skipped once the run has finished)."""
    import dagster as dg

    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(asset), check), limit=1)
    return records[0].status.value if records else None


def random_confidence(spark, n_users, n_items, n_rows, seed=3):
    """A seeded random (user_idx, item_idx, confidence) matrix, log weighting with alpha 2."""
    import numpy as np

    from recsys_dagster.ml.als.confidence import ConfidenceParams, confidence_matrix

    rng = np.random.default_rng(seed)
    rows = {(int(u), int(i)): int(p) for u, i, p in zip(rng.integers(0, n_users, n_rows),
                                                         rng.integers(0, n_items, n_rows),
                                                         rng.integers(1, 30, n_rows))}
    inter = spark.createDataFrame([(u, i, p) for (u, i), p in rows.items()],
                                  "user_idx int, item_idx int, plays long")
    return confidence_matrix(inter, ConfidenceParams(weighting="log", alpha=2.0)).persist()


# The whole pipeline on small synthetic data, as the shared `standard_run` (conftest.py) makes
# it once per session: the tests that only read a trained warehouse read that one, the cluster
# runs must reproduce it, and tests that change a warehouse start from a copy. Its plays lie in
# the calendar's last 7 days, so a run whose calendar starts on 2024-03-24 (STANDARD_CALENDAR,
# for processes that cost per day ingested) reads exactly the same plays.
STANDARD_CONFIG = {"ops": {
    "ingest_play_logs": {"config": {"synthetic": {
        "n_users": 300, "n_items": 400, "n_artists": 60, "seed": 7, "active_day_share": 0.8,
        "songs_per_active_day": 8, "library_start": 30, "artist_popularity_sigma": 1.0,
        "start_date": "2024-03-24"}}},
    "als_model": {"config": {"rank": 8, "max_iter": 6}},
    "evaluation_metrics": {"config": {"n_bootstrap": 100}},
}}
STANDARD_CALENDAR = {"RECSYS_CALENDAR_START": "2024-03-24"}


# What the test profile turns off (resources/spark/test.yaml): queries interpreted, not compiled.
CODEGEN = {"spark.sql.codegen.wholeStage": "true", "spark.sql.codegen.factoryMode": "FALLBACK"}


@contextmanager
def compiled(spark):
    """The session's queries compiled, as a `local` or `small` profile's are, for a test whose
    rows are many (the test profile interprets them: cheaper on its usual tiny data)."""
    before = {key: spark.conf.get(key) for key in CODEGEN}
    for key, value in CODEGEN.items():
        spark.conf.set(key, value)
    try:
        yield spark
    finally:
        for key, value in before.items():
            spark.conf.set(key, value)


def database_sessions(conn, db: str = "dagster") -> int:
    """Connections ever opened to a PostgreSQL database (its server's statistics), read on an
    open psycopg2 connection."""
    with conn.cursor() as cur:
        cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (db,))
        return cur.fetchone()[0]


def copy_warehouse(store, dst):
    """A copy of a warehouse (every table, version and `current` link) to change freely."""
    from recsys_dagster.tables import TableStore

    shutil.copytree(store.base_dir, str(dst), symlinks=True)
    return TableStore(str(dst))


def dot_tolerance(queries, cands, safety=4.0):
    """How far apart two code paths may put one float32 dot product of a query and a candidate.

    A sum of r products in float32 carries a rounding error of at most about r * eps *
    sum(|q_i c_i|) (eps = 2**-23), and sum(|q_i c_i|) <= |q| |c| (Cauchy-Schwarz). Another
    tile shape, another BLAS kernel (processors pick different ones: AMD EPYC rounds otherwise
    than Intel for the same shapes), faiss's SIMD loops or a different summation order each
    land somewhere in that band, so two paths differ by at most twice the bound; `safety`
    doubles that again. Scores are never compared bit for bit across paths."""
    import numpy as np

    q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    c = np.atleast_2d(np.asarray(cands, dtype=np.float64))
    rank = q.shape[1]
    biggest = np.linalg.norm(q, axis=1).max() * np.linalg.norm(c, axis=1).max()
    return safety * rank * float(np.finfo(np.float32).eps) * float(biggest)


def assert_same_top_k(got, want, tol):
    """Two top-k tables of (query, rank, id, score) rows from different code paths.

    Per query: the same number of rows, scores within `tol` of each other rank by rank, and
    the same ids rank by rank, except among ids whose scores tie within `tol` (their order is
    rounding, so only the set is compared) and in the tie group at the end of the list, where
    a candidate whose score ties the k-th one within `tol` may stand in for it. `got` and
    `want` are iterables of rows or the (queries, ranks, ids, scores) arrays of top_k_rows."""
    import numpy as np

    def by_query(rows):
        if isinstance(rows, tuple) and len(rows) == 4 and hasattr(rows[0], "shape"):
            rows = zip(*rows)
        plain = [tuple(getattr(v, "item", lambda v=v: v)() for v in row) for row in rows]
        out = {}
        for q, r, i, s in sorted(plain, key=lambda row: (row[0], row[1])):
            out.setdefault(q, []).append((int(r), i, float(s)))
        return out

    g, w = by_query(got), by_query(want)
    assert g.keys() == w.keys(), sorted(set(g) ^ set(w))[:10]
    for q, want_rows in w.items():
        got_rows = g[q]
        assert [r for r, _, _ in got_rows] == [r for r, _, _ in want_rows], q
        gs = np.array([s for _, _, s in got_rows])
        ws = np.array([s for _, _, s in want_rows])
        np.testing.assert_allclose(gs, ws, rtol=0, atol=tol, err_msg=f"query {q}")
        # Tie groups of the wanted list: neighbours within 2 tol (each side is within tol).
        cuts = np.flatnonzero(np.abs(np.diff(ws)) > 2 * tol) + 1
        bounds = [0, *cuts.tolist(), len(ws)]
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            got_ids = [i for _, i, _ in got_rows[lo:hi]]
            want_ids = [i for _, i, _ in want_rows[lo:hi]]
            if hi < len(ws):
                assert sorted(got_ids) == sorted(want_ids), (q, lo, got_ids, want_ids)
        ids = [i for _, i, _ in got_rows]
        assert len(set(ids)) == len(ids), (q, ids)
