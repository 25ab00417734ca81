"""Progress lines of long steps: what the step reports, or Spark's running tasks."""

import time

import pytest

from recsys_dagster.progress import PROGRESS_ENV, Heartbeat


def test_a_loop_that_reports_gets_done_of_total_and_time_left():
    lines = []
    with Heartbeat(lines.append, "fit", every_s=0.05) as beat:
        beat.update(1, 4, "iterations")
        time.sleep(0.2)
    assert lines and all(line.startswith("fit: 1 of 4 iterations done, ") for line in lines)
    assert "s elapsed, about " in lines[-1] and lines[-1].endswith(" s left")


def test_a_short_step_logs_nothing():
    lines = []
    with Heartbeat(lines.append, "quick", every_s=5):
        pass
    assert lines == []


def test_a_spark_step_reports_its_running_tasks(spark):
    lines = []

    def slow(batches):
        for batch in batches:
            time.sleep(0.6)
            yield batch

    with Heartbeat(lines.append, "scoring", spark, every_s=0.2):
        spark.range(4).repartition(4).mapInPandas(slow, "id long").count()
    running = [line for line in lines if "Spark: " in line]
    assert running, lines
    assert all(line.startswith("scoring: ") and " tasks done in " in line for line in running)


def test_the_fit_logs_its_iterations_in_the_run_log(standard_run, spark_resource, tmp_path,
                                                    monkeypatch):
    """A step longer than the interval: als_model's log has 'n of 6 iterations' lines. The
    fit runs on Spark (broadcast): engine auto fits the standard run's ratings in the driver
    within a tenth of a second, shorter than any interval."""
    from helpers import STANDARD_CONFIG, copy_warehouse, materialize

    from recsys_dagster.definitions import make_resources
    from recsys_dagster.resources import Warehouse

    monkeypatch.setenv(PROGRESS_ENV, "0.2")
    store = copy_warehouse(standard_run.store, tmp_path / "data")
    resources = make_resources(spark=spark_resource, warehouse=Warehouse(base_dir=store.base_dir))
    als = {"config": {**STANDARD_CONFIG["ops"]["als_model"]["config"], "engine": "broadcast"}}
    run = materialize(["als_model"], resources, {"ops": {"als_model": als}},
                      instance=standard_run.instance)
    assert run.success
    messages = [e.user_message for r in run.results
                for e in standard_run.instance.all_logs(r.run_id)]
    progress = [m for m in messages if m.startswith("als_model: ") and " iterations done" in m]
    assert progress, messages[-20:]
    assert all(f"of {STANDARD_CONFIG['ops']['als_model']['config']['max_iter']} iterations"
               in m for m in progress)


@pytest.mark.parametrize("value", ["0.5", "12"])
def test_the_interval_comes_from_the_environment(monkeypatch, value):
    monkeypatch.setenv(PROGRESS_ENV, value)
    assert Heartbeat(print, "x").every_s == float(value)
