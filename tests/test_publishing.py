"""What may be served: publishing.record_to_publish decides from the step's inputs alone (the
model's version and writer, the evaluation's record), never from the event log."""

import dagster as dg
import pytest

from recsys_dagster.assets.publishing import record_to_publish
from recsys_dagster.tables import TableSet

SETTINGS = {"confidence": {"alpha": 1.0}, "als": {"rank": 8}}


def model(version="v-2", run_id="run-a"):
    return TableSet({}, dict(SETTINGS), version=version, run_id=run_id)


def evaluation(version="v-2", publishable=True):
    return TableSet({}, {"evaluated": {
        "model_version": version, "run_id": "run-e", "metric": "precision@10", "value": 0.3,
        "settings": SETTINGS, "publishable": publishable}})


def test_a_model_whose_evaluation_passed_is_served_under_that_record():
    record = record_to_publish("run-later", model(), evaluation(), served={})
    assert record == {"model_version": "v-2", "run_id": "run-e", "metric": "precision@10",
                      "value": 0.3, "settings": SETTINGS}


def test_a_model_whose_gates_failed_is_refused_even_in_the_run_that_trained_it():
    with pytest.raises(dg.Failure, match="v-2 has not been published"):
        record_to_publish("run-a", model(), evaluation(publishable=False), served={})


def test_a_model_trained_in_this_run_without_its_evaluation_is_the_operators_choice():
    record = record_to_publish("run-a", model(), evaluation(version="v-1"), served={})
    assert record == {"model_version": "v-2", "run_id": "run-a", "settings": SETTINGS}


def test_an_older_unevaluated_model_is_refused_unless_it_is_the_one_served():
    with pytest.raises(dg.Failure, match="never ran"):
        record_to_publish("run-b", model(), evaluation(version="v-1"), served={})
    served = {"model_version": "v-2", "run_id": "run-0", "metric": "precision@10",
              "value": 0.2}
    assert record_to_publish("run-b", model(), evaluation(version="v-1"), served) == served
