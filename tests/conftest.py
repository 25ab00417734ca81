"""One cheap local Spark session for the whole test session (local[2], 2 partitions, no UI),
and a Dagster instance and data dir of the suite's own.

The suite never writes where the user's runs live: the data dir, the checkpoints and
DAGSTER_HOME are set to a temporary folder here, before anything reads them, whatever the
environment said; at the end of the session the user's `.dagster_home` and `data` in the
repository (and the DAGSTER_HOME / RECSYS_DATA_DIR they had set) must be exactly as they were
when it started, or the session fails.
"""

import os
import shutil
import tempfile

import pytest

from recsys_dagster.paths import REPO_ROOT

USER_PLACES = sorted({str(REPO_ROOT / ".dagster_home"), str(REPO_ROOT / "data"),
                      *(os.path.abspath(os.environ[v]) for v in ("DAGSTER_HOME",
                                                                 "RECSYS_DATA_DIR")
                        if os.environ.get(v))})
# Every SparkResource built during the tests (including the Definitions' default one) resolves
# to the test profile, so they all join the one session made below.
os.environ.setdefault("RECSYS_SPARK_PROFILE", "test")
# Every JVM the suite starts (its sessions, the deployment's run workers, the cluster's
# processes) compiles with C1 only, with C2's code cache size (C1's own default fills up
# during a run and the JVM stops compiling): on the suite's small data a run costs the JVM
# less CPU than with C2, which spends it compiling for a peak speed small runs never reach
# (benchmarks/fixed_cost.py; docs/testing.md). `java` reads this from the environment.
os.environ.setdefault("JDK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m")
_SESSION_TMP = tempfile.mkdtemp(prefix="recsys-tests-")
os.environ["RECSYS_DATA_DIR"] = os.path.join(_SESSION_TMP, "data")
os.environ["RECSYS_SPARK_CHECKPOINT_DIR"] = os.path.join(_SESSION_TMP, "checkpoints")
os.environ["DAGSTER_HOME"] = os.path.join(_SESSION_TMP, "dagster_home")
os.makedirs(os.environ["DAGSTER_HOME"])


def snapshot(places) -> dict:
    """Every file, folder and link below the given places, with its size, time and target."""
    seen = {}
    for place in places:
        for root, dirs, files in os.walk(place):
            for name in dirs + files:
                path = os.path.join(root, name)
                st = os.lstat(path)
                target = os.readlink(path) if os.path.islink(path) else None
                seen[path] = (st.st_size, st.st_mtime_ns, target)
        seen[place] = os.path.exists(place)
    return seen


_BEFORE = snapshot(USER_PLACES)


# How the two xdist workers share the suite. A unit of work is a whole file, so a file's module
# fixtures are made once, except that every file that reads `standard_run` is one unit, so that
# the standard run is materialised once. (xdist's own `loadgroup` cannot do this here: with
# pytest 9.2 it silently ignores `xdist_group` marks and hands out single tests, which splits a
# file's module fixture, e.g. the one deployment, across both workers.) The longest units go
# first (the deployment file, the standard-run unit, then the next longest), so none is left for
# the end, and a worker asks for its next unit only when the last test of its current one waits
# to run (xdist's own threshold, two tests, handed the deployment's worker its next unit while
# the schedule's test, about 100 s, still ran, and could leave the other worker idle at the end).
_TESTS = os.path.dirname(os.path.abspath(__file__))
_STANDARD_RUN_FILES = {name for name in os.listdir(_TESTS) if name.startswith("test_")
                       and name.endswith(".py")
                       and "standard_run" in open(os.path.join(_TESTS, name)).read()}
_FIRST = ["test_deployment.py", "standard_run", "test_lastfm.py", "test_als_engines.py",
          "test_known_answers.py", "test_als_lastfm_quality.py", "test_bad_input_volume.py"]


def work_unit(nodeid: str) -> str:
    name = nodeid.split("::")[0].rsplit("/", 1)[-1]
    return "standard_run" if name in _STANDARD_RUN_FILES else name


def pytest_collection_modifyitems(items):
    first = {unit: i for i, unit in enumerate(_FIRST)}
    items.sort(key=lambda item: first.get(work_unit(item.nodeid), len(first)))


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return work_unit(nodeid)

        def _reschedule(self, node):
            # A worker runs a test only once it holds the next one (or is told to stop), so
            # one pending test is the last moment to hand it more without it waiting.
            if node.shutting_down:
                return
            if not self.workqueue:
                node.shutdown()
                return
            if self._pending_of(self.assigned_work[node]) <= 1:
                self._assign_work_unit(node)

    return ByWorkUnit(config, log)


def pytest_sessionfinish(session, exitstatus):
    after = snapshot(USER_PLACES)
    if after != _BEFORE:
        changed = sorted(k for k in set(after) | set(_BEFORE) if after.get(k) != _BEFORE.get(k))
        print(f"\nthe test suite changed the user's runs or data: {changed[:10]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

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
        pytest.skip(f"the Last.fm tests read a local copy of lastfm-2k, and there is none at "
                    f"{LASTFM_DIR} (../shared beside the repository)")
    return LASTFM_DIR


class StandardRun:
    """The shared run: its result (the two runs' events), its warehouse, its instance."""

    def __init__(self, result, store, instance):
        self.result, self.store, self.instance = result, store, instance


@pytest.fixture(scope="session")
def standard_run(spark, spark_resource, tmp_path_factory):
    """helpers.STANDARD_CONFIG materialised once for the session, every check run. Read it;
    to change a warehouse, start from helpers.copy_warehouse(standard_run.store, ...)."""
    import dagster as dg
    from helpers import STANDARD_CONFIG, materialize

    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse
    from recsys_dagster.tables import TableStore

    base = str(tmp_path_factory.mktemp("standard") / "data")
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(None, make_resources(spark=spark_resource,
                                              warehouse=Warehouse(base_dir=base)),
                         STANDARD_CONFIG, instance=instance)
    assert result.success
    return StandardRun(result, TableStore(base), instance)
