"""One cheap local Spark session for the whole test session (local[2], 2 partitions, no UI)."""

import os
import shutil
import tempfile

import pytest

# Every SparkResource built during the tests (including the Definitions' default one) resolves
# to the test profile, so they all join the one session made below.
os.environ.setdefault("RECSYS_SPARK_PROFILE", "test")
_SESSION_TMP = tempfile.mkdtemp(prefix="recsys-tests-")
os.environ.setdefault("RECSYS_DATA_DIR", os.path.join(_SESSION_TMP, "data"))
os.environ.setdefault("RECSYS_SPARK_CHECKPOINT_DIR", os.path.join(_SESSION_TMP, "checkpoints"))

LASTFM_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                          "data", "lastfm-2k"))


@pytest.fixture(scope="session")
def spark_resource():
    from recsys_dagster.resources import SparkResource

    return SparkResource(profile="test")


@pytest.fixture(scope="session")
def spark(spark_resource):
    session = spark_resource.spark_session
    yield session
    session.stop()
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    return str(path)


@pytest.fixture
def resources(spark, spark_resource, data_dir):
    """Definitions-style resources writing under a fresh temporary data directory."""
    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    return make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=data_dir))


@pytest.fixture(scope="session")
def lastfm_dir():
    if not os.path.exists(os.path.join(LASTFM_DIR, "user_artists.dat")):
        pytest.fail(f"lastfm-2k data not found at {LASTFM_DIR} (expected ../shared beside the repo)")
    return LASTFM_DIR
