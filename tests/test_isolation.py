"""The suite runs against a Dagster instance and a data dir of its own (conftest.py)."""

import os

import dagster as dg
from conftest import _SESSION_TMP, USER_PLACES, snapshot

from recsys_dagster import cli
from recsys_dagster.paths import REPO_ROOT, data_dir


def test_runs_and_tables_of_the_suite_go_to_its_own_folder():
    for path in (data_dir(), os.environ["DAGSTER_HOME"],
                 os.environ["RECSYS_SPARK_CHECKPOINT_DIR"]):
        assert os.path.commonpath([path, _SESSION_TMP]) == _SESSION_TMP, path
        assert path not in USER_PLACES
    assert {str(REPO_ROOT / ".dagster_home"), str(REPO_ROOT / "data")} <= set(USER_PLACES)
    instance = cli._instance()  # the instance the CLI (and so the lastfm test) records into
    assert isinstance(instance, dg.DagsterInstance)
    assert os.path.realpath(instance.root_directory) == os.path.realpath(
        os.environ["DAGSTER_HOME"])


def test_the_end_of_session_guard_sees_a_change(tmp_path):
    place = tmp_path / "home"
    (place / "runs").mkdir(parents=True)
    (place / "runs" / "a").write_text("x")
    before = snapshot([str(place)])
    assert snapshot([str(place)]) == before
    (place / "runs" / "b").write_text("y")  # a run recorded where it must not be
    assert snapshot([str(place)]) != before
    assert snapshot([str(tmp_path / "absent")]) == {str(tmp_path / "absent"): False}
