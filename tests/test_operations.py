"""Day-one operations: the served model's files survive any retention, a rollback serves the
previous model again, and a forgotten listener leaves every kept version of every table."""

import contextlib
import io
import json
import os

import pyarrow.parquet as pq
from helpers import STANDARD_CONFIG, copy_warehouse, materialize

from recsys_dagster import cli, operations
from recsys_dagster.tables import KEEP_VERSIONS, TableStore

RETRAIN = ["user_index", "item_index", "interactions", "evaluation_split", "als_tuning",
           "confidence_matrix", "als_model", "artist_model", "evaluation_metrics",
           "artist_evaluation", "user_recommendations", "similar_items", "similar_artists",
           "artist_radio"]


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_a_pinned_version_survives_any_number_of_writes(spark, tmp_path):
    store = TableStore(str(tmp_path))
    frame = spark.createDataFrame([(1,)], "x int")
    first = os.path.basename(store.write("t", frame))
    store.pin("t", first, "model-a")
    for _ in range(KEEP_VERSIONS + 2):
        store.write("t", frame)
    assert first in store.versions("t") and len(store.versions("t")) == KEEP_VERSIONS + 1
    # Only the newest two tags stay pinned: a third served model lets the first one go.
    store.pin("t", store.versions("t")[-1], "model-b")
    store.pin("t", store.versions("t")[-1], "model-c")
    store.write("t", frame)
    assert first not in store.versions("t")
    assert [p["tag"] for p in store.pins("t")] == ["model-b", "model-c"]


def test_rollback_serves_the_previous_model_again(standard_run, spark_resource, tmp_path):
    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    store = copy_warehouse(standard_run.store, tmp_path / "data")
    code, _, err = run_cli("rollback", "--data-dir", store.base_dir)
    assert code == 2 and "no earlier served model" in err  # one model served so far
    first = store.version("als_model")
    first_tables = {t: store.version(t) for t in operations.SERVED_TABLES}
    resources = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=store.base_dir))
    assert materialize(RETRAIN, resources, STANDARD_CONFIG).success  # a second served model
    second = store.version("als_model")
    assert second != first and operations.served_models(store) == [first, second]
    # Two more models trained and never published: retention alone would delete the first.
    for _ in range(2):
        assert materialize(["confidence_matrix", "als_model"], resources,
                           {"ops": {"als_model": STANDARD_CONFIG["ops"]["als_model"]}}).success
    assert first in store.versions("als_model") and len(store.versions("als_model")) > 2

    code, out, _ = run_cli("rollback", "--data-dir", store.base_dir)
    assert code == 0 and f"from model {second} to {first}" in out
    assert store.version("als_model") == first
    assert {t: store.version(t) for t in operations.SERVED_TABLES} == first_tables
    assert store.manifest("user_recommendations")["served_model"]["model_version"] == first
    assert len(store.read_pandas("user_recommendations")) > 0
    log = [json.loads(line) for line in
           open(os.path.join(store.base_dir, operations.OPERATIONS_LOG))]
    assert log[-1]["operation"] == "rollback" and log[-1]["to_model"] == first
    # The radio reads the rolled-back model's tables, a listener's own station too.
    artist = store.read_pandas("artist_radio", frame="artists").artist_name.iloc[0]
    code, out, err = run_cli("radio", "--artist", artist, "--user", user_of(store),
                             "--data-dir", store.base_dir)
    assert code == 0 and f"radio of {artist}" in out, err


def user_of(store: TableStore) -> str:
    return store.read_pandas("user_recommendations").user_id.iloc[0]


def listener_rows(store: TableStore, user_id: str, idx: set[int]) -> dict[str, int]:
    """Rows of the listener in every kept version of every table that holds listeners."""
    found = {}
    for table, places in operations.LISTENER_COLUMNS.items():
        for vdir in operations._version_dirs(store, table):  # noqa: SLF001
            for frame, column, key in places:
                for path in operations._frame_paths(vdir, frame):  # noqa: SLF001
                    col = pq.read_table(path, columns=[column])[column].to_pylist()
                    hits = sum(v == user_id if key == "id" else v in idx for v in col)
                    found[table] = found.get(table, 0) + hits
    return found


def total_rows(store: TableStore) -> dict[str, int]:
    out = {}
    for table, places in operations.LISTENER_COLUMNS.items():
        for vdir in operations._version_dirs(store, table):  # noqa: SLF001
            for frame, _, _ in places:
                for path in operations._frame_paths(vdir, frame):  # noqa: SLF001
                    out[table] = out.get(table, 0) + pq.read_metadata(path).num_rows
    return out


def spark_frames(spark, store: TableStore) -> dict:
    """Every current table (and frame) that holds listeners, as Spark reads it."""
    out = {}
    for table, places in operations.LISTENER_COLUMNS.items():
        for frame, _, _ in places:
            read = store.read(spark, table)
            out[(table, frame)] = read[frame] if frame else read
    return out


def test_a_forgotten_listener_leaves_every_kept_version(standard_run, spark, tmp_path):
    store = copy_warehouse(standard_run.store, tmp_path / "data")
    user = user_of(store)
    idx = operations.listener_indexes(store, user)
    before, theirs = total_rows(store), listener_rows(store, user, idx)
    schemas = {k: f.schema for k, f in spark_frames(spark, store).items()}
    assert len(idx) == 1 and all(theirs[t] > 0 for t in
                                 ("play_events", "user_index", "interactions", "als_model",
                                  "user_recommendations", "confidence_matrix"))
    code, out, _ = run_cli("forget", "--user", user, "--data-dir", store.base_dir)
    assert code == 0 and f"forgot listener {user}" in out
    assert not any(listener_rows(store, user, idx).values())
    after = total_rows(store)
    assert {t: before[t] - after[t] for t in before} == theirs  # nobody else's rows
    record = json.loads(open(os.path.join(store.base_dir, operations.ERASURES_LOG)).read())
    assert record["user_id"] == user and record["rows_removed"] == {
        t: n for t, n in theirs.items() if n} and record["at"]
    assert store.read_pandas("user_recommendations").user_id.ne(user).all()  # still readable
    # And by Spark, as the next run reads them: the same schemas (timestamps as Spark wrote
    # them), every row of the rewritten files (no stale checksum beside them).
    for key, frame in spark_frames(spark, store).items():
        assert frame.schema == schemas[key], key
        assert frame.count() == (store.read_pandas(key[0], frame=key[1]).shape[0]), key
    code, _, err = run_cli("forget", "--user", "nobody-at-all", "--data-dir", store.base_dir)
    assert code == 2 and "no listener 'nobody-at-all'" in err
