"""Bad input through the asset graph: quarantine, metadata, blocking check, clear errors."""

import pytest
from helpers import checks_by_name, materialize

from recsys_dagster.tables import TableStore


def file_config(path, threshold=0.05):
    return {"ops": {"ingest_play_logs": {"config": {
        "source": "file", "max_quarantine_fraction": threshold,
        "file": {"path": path, "format": "csv", "timestamp_column": "ts"}}}}}


def write_csv(tmp_path, good, bad):
    lines = ["user_id,item_id,plays,ts"]
    lines += [f"u{i % 7},s{i % 11},{1 + i % 4},2024-03-0{1 + i % 9}" for i in range(good)]
    lines += [f"u{i},,3,2024-03-01" for i in range(bad)]
    path = tmp_path / "plays.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


SELECTION = ["play_events", "play_events_quarantine", "item_catalog", "user_index"]


def test_too_much_garbage_blocks_downstream(resources, data_dir, tmp_path):
    path = write_csv(tmp_path, good=50, bad=10)
    result = materialize(SELECTION, resources, file_config(path), raise_on_error=False)
    assert checks_by_name(result)[("play_events", "quarantine_fraction_below_threshold")] is False
    store = TableStore(data_dir)
    assert len(store.read_pandas("play_events_quarantine")) == 10
    assert not store.exists("user_index")  # blocked by the failed check
    mats = {m.asset_key.path[-1]: m.materialization.metadata
            for m in result.get_asset_materialization_events()}
    assert mats["play_events_quarantine"]["quarantined_fraction"].value == pytest.approx(10 / 60)
    assert "null or empty item_id" in mats["play_events_quarantine"]["reasons"].value


def test_a_little_garbage_passes_and_is_counted(resources, data_dir, tmp_path):
    path = write_csv(tmp_path, good=200, bad=2)
    result = materialize(SELECTION, resources, file_config(path))
    assert result.success
    store = TableStore(data_dir)
    assert len(store.read_pandas("play_events_quarantine")) == 2
    assert store.exists("user_index")


def test_missing_file_fails_the_run_naming_the_file(resources, tmp_path):
    missing = str(tmp_path / "absent.csv")
    with pytest.raises(Exception, match="absent.csv"):
        materialize(SELECTION, resources, file_config(missing))


def test_wrong_schema_fails_naming_expected_columns(resources, tmp_path):
    path = tmp_path / "wrong.csv"
    path.write_text("listener,track\na,b\n")
    with pytest.raises(Exception, match=r"wrong.csv.*user_id"):
        materialize(SELECTION, resources, file_config(str(path)))
