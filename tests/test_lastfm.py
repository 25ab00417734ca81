"""lastfm-2k end to end through the README's CLI: ALS clearly above popularity."""

import os

from recsys_dagster import cli
from recsys_dagster.paths import RESOURCES_DIR, data_dir
from recsys_dagster.tables import TableStore


def test_lastfm_end_to_end_via_cli(spark, lastfm_dir, capsys):
    code = cli.main(["run", "--config", str(RESOURCES_DIR / "config" / "lastfm-2k.yaml")])
    out = capsys.readouterr().out
    assert code == 0, out
    store = TableStore(data_dir())
    for name in ("play_events", "user_recommendations", "similar_items", "evaluation_metrics"):
        assert os.path.join(store.table_dir(name), "current") in out
    metrics = store.read_pandas("evaluation_metrics").set_index(["model", "metric"]).value
    als, pop = metrics["als", "precision"], metrics["popularity", "precision"]
    assert als > 0.17 and pop < 0.08 and als > 2 * pop, (als, pop)
    assert store.read_pandas("play_events_quarantine").empty
    assert len(store.read_pandas("play_events")) == 92834
    # Similar artists carry names from artists.dat.
    sims = store.read_pandas("similar_items")
    assert sims.name.notna().mean() > 0.99
    assert "recommendations for 3 of 1892 users" in out
