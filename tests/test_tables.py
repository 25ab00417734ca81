import json
import os

import pytest

from recsys_dagster.tables import CURRENT, RUN_ID, SCHEMA, TableSet, TableStore


def test_write_read_and_swap(spark, tmp_path):
    store = TableStore(str(tmp_path))
    assert not store.exists("t")
    store.write("t", spark.createDataFrame([(1,), (2,)], "x int"))
    first = store.current_path("t")
    store.write("t", spark.createDataFrame([(3,)], "x int"))
    assert store.current_path("t") != first
    assert [r.x for r in store.read(spark, "t").collect()] == [3]
    assert os.path.islink(os.path.join(str(tmp_path), "t", CURRENT))
    assert store.read_pandas("t").x.tolist() == [3]


def test_tableset_round_trip_with_params(spark, tmp_path):
    store = TableStore(str(tmp_path))
    ts = TableSet({"a": spark.createDataFrame([(1,)], "x int"),
                   "b": spark.createDataFrame([(2,)], "y int")}, {"rank": 4})
    store.write("m", ts, extra={RUN_ID: "run-1"})
    back = store.read(spark, "m")
    assert back.params == {"rank": 4}
    # It says which version it is and which run wrote it; a frame is read when asked for.
    assert back.version == store.version("m") and back.run_id == "run-1"
    assert list(back.frames) == ["a", "b"] and back.frames._loaded == {}
    assert back["a"].first().x == 1 and back["b"].first().y == 2


def test_a_read_uses_the_written_schema_and_infers_without_one(spark, tmp_path):
    """Every version records the Spark schema it was written with; a read hands it to Spark
    (no schema-reading job) and gets what inference gives: nullable columns, nested types
    too. A version without the entry (an older writer) is read by inference."""
    store = TableStore(str(tmp_path))
    from pyspark.sql import types as T

    df = spark.createDataFrame([(1, "a", [1.5], {"k": 2})], T.StructType([
        T.StructField("x", T.IntegerType(), False), T.StructField("s", T.StringType()),
        T.StructField("v", T.ArrayType(T.FloatType(), False), False),
        T.StructField("m", T.MapType(T.StringType(), T.IntegerType(), False))]))
    store.write("t", df)
    assert store.manifest("t")[SCHEMA] == json.loads(df.schema.json())
    inferred = spark.read.parquet(store.current_path("t")).schema
    # What the store must reproduce: a file source's columns are nullable, as written or not.
    assert not df.schema["x"].nullable and inferred["x"].nullable
    assert not df.schema["v"].dataType.containsNull and inferred["v"].dataType.containsNull
    back = store.read(spark, "t")
    assert back.schema == inferred and back.first().asDict() == df.first().asDict()
    with open(os.path.join(store.current_path("t"), "_manifest.json"), "r+") as fh:
        manifest = json.load(fh)
        del manifest[SCHEMA]
        fh.seek(0), fh.truncate(), json.dump(manifest, fh)
    assert store.read(spark, "t").schema == inferred


def test_half_written_version_never_becomes_current(spark, tmp_path):
    store = TableStore(str(tmp_path))
    store.write("t", spark.createDataFrame([(1,)], "x int"))
    good = store.current_path("t")
    # A writer that died mid-way leaves a version folder without a manifest.
    stray = os.path.join(str(tmp_path), "t", "v-99999999T000000000000-dead")
    os.makedirs(stray)
    open(os.path.join(stray, "part-0.parquet"), "w").write("garbage")
    assert store.current_path("t") == good
    assert store.read(spark, "t").first().x == 1
    store.write("t", spark.createDataFrame([(2,)], "x int"))
    assert not os.path.exists(stray)  # cleaned by the next good write
    with open(os.path.join(store.current_path("t"), "_manifest.json")) as fh:
        assert json.load(fh)["kind"] == "dataframe"


def test_old_versions_pruned(spark, tmp_path):
    store = TableStore(str(tmp_path))
    for i in range(4):
        store.write("t", spark.createDataFrame([(i,)], "x int"))
    versions = [d for d in os.listdir(os.path.join(str(tmp_path), "t")) if d.startswith("v-")]
    assert len(versions) == 2


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ""])
def test_paths_cannot_escape_base(tmp_path, name):
    with pytest.raises(ValueError):
        TableStore(str(tmp_path)).table_dir(name)


def test_missing_table_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="never been written"):
        TableStore(str(tmp_path)).manifest("nothing")


def test_write_days_splits_by_day_and_refuses_foreign_days(spark, tmp_path):
    import datetime as dt

    store = TableStore(str(tmp_path))
    d = dt.date.fromisoformat
    df = spark.createDataFrame([("a", d("2024-03-01")), ("b", d("2024-03-01")),
                                ("c", d("2024-03-03"))], "user_id string, day date")
    store.write_days("plays", df, ["2024-03-01", "2024-03-02", "2024-03-03"])
    assert store.partitions("plays") == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert sorted(store.read_pandas("plays", partition="2024-03-01").user_id) == ["a", "b"]
    empty = store.read(spark, "plays", "2024-03-02")  # a day without rows: empty, same schema
    assert empty.count() == 0 and empty.columns == ["user_id", "day"]
    before = store.current_path("plays", "2024-03-01")
    with pytest.raises(ValueError, match="outside the run's range.*2024-03-03"):
        store.write_days("plays", df, ["2024-03-01"])
    assert store.current_path("plays", "2024-03-01") == before  # nothing was swapped in
    assert not [p for p in os.listdir(tmp_path / "plays") if p.startswith(".staging")]

    # An unpartitioned version left by an older layout does not shadow the day partitions.
    store.write("plays", spark.createDataFrame([("old",)], "user_id string"))
    assert sorted(store.read_pandas("plays").user_id) == ["a", "b", "c"]
    assert sorted(r.user_id for r in store.read(spark, "plays").collect()) == ["a", "b", "c"]


def test_staging_left_by_a_killed_write_is_swept_by_the_next(spark, tmp_path):
    import datetime as dt
    import subprocess
    import time

    from recsys_dagster.tables import STAGING_PREFIX, staging_name

    store = TableStore(str(tmp_path))
    tdir = tmp_path / "plays"
    dead = subprocess.Popen(["true"])
    dead.wait()
    ours = staging_name()
    host_part = ours[len(STAGING_PREFIX):].rsplit("-", 2)[0]
    killed = tdir / f"{STAGING_PREFIX}{host_part}-{dead.pid}-0badf00d"  # its writer is gone
    live = tdir / ours  # a write of this very process, still going on
    old = tdir / f"{STAGING_PREFIX}0123abcd"  # unnamed (or another host's), two days old
    fresh = tdir / f"{STAGING_PREFIX}otherhost-1-89abcdef"  # another host's, just now
    for folder in (killed, live, old, fresh):
        (folder / "_partition_day=2024-03-01").mkdir(parents=True)
    two_days_ago = time.time() - 2 * 86_400
    os.utime(old, (two_days_ago, two_days_ago))
    df = spark.createDataFrame([("a", dt.date(2024, 3, 1))], "user_id string, day date")
    store.write_days("plays", df, ["2024-03-01"])
    left = sorted(p for p in os.listdir(tdir) if p.startswith(STAGING_PREFIX))
    assert left == sorted([live.name, fresh.name])
    assert store.read_pandas("plays", partition="2024-03-01").user_id.tolist() == ["a"]
