"""A writer killed half-way through a table leaves the previous good table readable and intact."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from recsys_dagster.tables import MANIFEST, TableStore

WRITER = textwrap.dedent("""
    import sys
    from recsys_dagster.spark_session import build_session, resolve_settings
    from recsys_dagster.tables import TableStore
    spark = build_session(resolve_settings(profile="test", checkpoint_dir=sys.argv[2]))
    big = spark.range(0, 400_000_000, 1, 8).selectExpr("id", "id * 2 AS x", "uuid() AS u")
    TableStore(sys.argv[1]).write("t", big)   # far too slow to finish before the kill
""")


def test_killed_writer_leaves_previous_table(spark, tmp_path):
    base = str(tmp_path / "data")
    store = TableStore(base)
    store.write("t", spark.createDataFrame([(1, 2, "a"), (2, 4, "b")], "id long, x long, u string"))
    good = store.current_path("t")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, base, str(tmp_path / "ck")],
                            start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    tdir = store.table_dir("t")
    try:
        deadline = time.time() + 120
        started = False
        while time.time() < deadline and proc.poll() is None:
            versions = [d for d in os.listdir(tdir) if d.startswith("v-")]
            partial = [v for v in versions if os.path.join(tdir, v) != good]
            if partial and any(os.scandir(os.path.join(tdir, partial[0]))):
                started = True  # Spark has begun writing the new version
                time.sleep(2)
                break
            time.sleep(0.5)
        assert started, "the writer never started writing"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the Python driver and its JVM, no clean-up
        proc.wait(timeout=30)
    assert store.current_path("t") == good
    assert sorted(r.id for r in store.read(spark, "t").collect()) == [1, 2]
    strays = [d for d in os.listdir(tdir) if d.startswith("v-")
              and not os.path.exists(os.path.join(tdir, d, MANIFEST))]
    assert strays  # the half-written version is there, but never became current
    store.write("t", spark.createDataFrame([(3, 6, "c")], "id long, x long, u string"))
    assert not any(os.path.exists(os.path.join(tdir, d)) for d in strays)
    assert [r.id for r in store.read(spark, "t").collect()] == [3]
