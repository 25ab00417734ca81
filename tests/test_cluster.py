"""The whole pipeline through Spark Connect on a real standalone cluster, compared with local
mode (the session's standard run): the same seed and data must give the same served tables.
The run uses a calendar of the data's 7 days (STANDARD_CALENDAR): the same plays, a week of
day tables to write instead of 90."""

import copy
import os
import subprocess
import sys

import pytest
import yaml
from helpers import STANDARD_CALENDAR, STANDARD_CONFIG, assert_same_top_k
from spark_cluster import connect_server, standalone_cluster

from recsys_dagster.spark_session import load_profile
from recsys_dagster.tables import TableStore

pytestmark = pytest.mark.slow

# The test profile's interpreted execution (no code generation on tiny data), on the server.
CODEGEN = {k: v for k, v in load_profile("test")["conf"].items()
           if k.startswith("spark.sql.codegen.")}
TABLES = {"user_recommendations": ["user_id", "rank"], "similar_items": ["item_id", "rank"]}


def run_pipeline(tmp_path, name, **env_extra):
    """The standard run's config, fitted by the broadcast engine: on the cluster's executors,
    where engine auto would fit data this small in the client."""
    data = tmp_path / name
    config = tmp_path / "small.yaml"
    run_config = copy.deepcopy(STANDARD_CONFIG)
    run_config["ops"]["als_model"]["config"]["engine"] = "broadcast"
    config.write_text(yaml.safe_dump(run_config))
    env = {**os.environ, "RECSYS_DATA_DIR": str(data), "RECSYS_SPARK_PROFILE": "test",
           "RECSYS_SPARK_CHECKPOINT_DIR": str(data / "_checkpoints"), **STANDARD_CALENDAR,
           **env_extra}
    env.pop("DAGSTER_HOME", None)
    out = subprocess.run([sys.executable, "-m", "recsys_dagster.cli", "run", "--config",
                          str(config)], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "retrain as of 2024-03-30" in out.stdout
    store = TableStore(str(data))
    assert store.manifest("als_model")["params"]["fitted_by"] == "broadcast"
    return {t: store.read_pandas(t).sort_values(keys).reset_index(drop=True)
            for t, keys in TABLES.items()}


# Scores of a fit on the cluster's executors against the standard run's (engine auto: the same
# fit in the test session's driver, one block a side): the same arithmetic in other processes,
# whose BLAS may use other kernels or thread counts; six iterations compound the rounding,
# which stays far below 1e-5 on scores of at most about 1.
SCORE_TOLERANCE = 1e-5


def assert_same_tables(got, want):
    for table, keys in TABLES.items():
        a, b = got[table], want[table]
        item = "item_id" if table == "user_recommendations" else "similar_item_id"
        assert len(a) == len(b) > 0, table
        assert_same_top_k(a[keys + [item, "score"]].itertuples(index=False),
                          b[keys + [item, "score"]].itertuples(index=False), SCORE_TOLERANCE)


@pytest.fixture(scope="module")
def local_tables(standard_run):
    """The same run config in local mode (this test session's local[2,4] session)."""
    return {t: standard_run.store.read_pandas(t).sort_values(keys).reset_index(drop=True)
            for t, keys in TABLES.items()}


def test_spark_connect_on_a_standalone_cluster_gives_the_local_tables(tmp_path, local_tables):
    """The client talks Spark Connect to a server whose executor is a standalone cluster
    worker's (a JVM and Python workers of its own, as on a real cluster): one pipeline run
    covers both ways of pointing the project at a cluster (RECSYS_SPARK_REMOTE here; the
    classic client's RECSYS_SPARK_MASTER resolution is tested in test_spark_resource)."""
    server_conf = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
                   "spark.sql.session.timeZone": "UTC",
                   "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
                   "spark.sql.execution.arrow.pyspark.enabled": "true",
                   "spark.executor.memory": "1g",
                   "spark.checkpoint.dir": str(tmp_path / "connect-checkpoints"),
                   **CODEGEN}
    with standalone_cluster(tmp_path / "cluster") as master:  # workers register meanwhile
        assert master.startswith("spark://127.0.0.1:")
        with connect_server(tmp_path / "connect", master, server_conf) as remote:
            tables = run_pipeline(tmp_path, "data", RECSYS_SPARK_REMOTE=remote,
                                  RECSYS_SPARK_PROFILE="connect")
            assert executors_ran_on_the_workers(tmp_path / "cluster")
    assert_same_tables(tables, local_tables)


def executors_ran_on_the_workers(cluster_dir) -> bool:
    """Every worker started an executor for the Connect server's application (its work dir
    holds the executor's folder): the tasks did not run inside the server's own JVM."""
    workers = list(cluster_dir.glob("worker*"))
    return bool(workers) and all(any(w.glob("app-*/*")) for w in workers)
