"""`make ui`'s development path: `dagster dev` on a Dagster home with the development instance
(deploy/dagster.dev.yaml), in a subprocess. The deployment's UI, the lineage and the product
pages in a browser are tested in test_deployment.py.

dagster dev (1.13) can ignore SIGTERM for a long time, so it runs in its own process group and
the whole group is killed for sure (SIGKILL after a grace period).
"""

import os
import subprocess
import sys
import time

from spark_cluster import free_port, stop
from ui_helpers import GROUPS, gql

from recsys_dagster.deployment.instance import ensure_home
from recsys_dagster.paths import REPO_ROOT

INSTANCE = "{ instance { info runQueuingSupported } }"


def test_dagster_dev_runs_on_the_development_instance_without_the_banner(tmp_path):
    home = ensure_home(str(tmp_path / "dagster_home"))
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": home, "RECSYS_DATA_DIR": str(tmp_path / "data"),
           "RECSYS_SPARK_PROFILE": "test"}
    log_path = tmp_path / "dagster_dev.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "dagster"), "dev", "-h",
             "127.0.0.1", "-p", str(port)], cwd=REPO_ROOT, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, nodes = time.time() + 180, []
        while not nodes:
            assert proc.poll() is None and time.time() < deadline, log_path.read_text()[-3000:]
            try:
                nodes = gql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
            except Exception:  # not up yet
                time.sleep(2)
        assert {n["assetKey"]["path"][-1] for n in nodes} == set(GROUPS)
        instance = gql(port, INSTANCE)["instance"]
        assert instance["runQueuingSupported"]
        assert "granularity: run" in instance["info"] and "enabled: false" in instance["info"]
    finally:
        stop([proc], term_grace=10)
    output = log_path.read_text()
    assert "Telemetry:" not in output and "dagster.yaml" not in output, output[:2000]
