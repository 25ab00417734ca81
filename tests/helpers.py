"""Small helpers shared by tests."""

import shutil

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
        "n_users": 300, "n_items": 400, "n_artists": 60, "seed": 7, "n_days": 7,
        "start_date": "2024-03-24"}}},
    "als_model": {"config": {"rank": 8, "max_iter": 6}},
    "evaluation_metrics": {"config": {"n_bootstrap": 100}},
}}
STANDARD_CALENDAR = {"RECSYS_CALENDAR_START": "2024-03-24"}


def copy_warehouse(store, dst):
    """A copy of a warehouse (every table, version and `current` link) to change freely."""
    from recsys_dagster.tables import TableStore

    shutil.copytree(store.base_dir, str(dst), symlinks=True)
    return TableStore(str(dst))
