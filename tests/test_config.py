"""The run configuration is derived from the ml/ dataclasses: one definition of every default."""

import dataclasses

import pytest

from recsys_dagster import config
from recsys_dagster.ml.als import ALSParams
from recsys_dagster.ml.evaluation.tuning import TuningParams

DERIVED = [config.SyntheticConfig, config.FileSourceConfig, config.PlaySourceConfig,
           config.ConfidenceConfig, config.ALSConfig, config.SplitConfig, config.TuningConfig,
           config.EvaluationConfig, config.RecommendationsConfig, config.SimilarItemsConfig,
           config.SimilarArtistsConfig]
DAGSTER_ONLY = {"use_tuned"}  # what the pipeline does with tuning, not a model setting


@pytest.mark.parametrize("config_cls", DERIVED, ids=lambda c: c.__name__)
def test_config_defaults_and_descriptions_are_the_dataclass_ones(config_cls):
    params_cls = config._PARAMS_OF[config_cls]
    assert config_cls().params() == params_cls()
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    assert set(config_cls.model_fields) - set(fields) <= DAGSTER_ONLY
    for name, f in fields.items():
        described = config_cls.model_fields[name].description
        assert described and described == f.metadata["doc"], name


def test_a_run_config_reaches_the_dataclass():
    als = config.ALSConfig(rank=7, engine="mllib", use_tuned=True).params()
    assert als == dataclasses.replace(ALSParams(), rank=7, engine="mllib")
    source = config.PlaySourceConfig(source="file", file={"path": "x.csv", "plays_column": None},
                                     synthetic={"n_users": 5}).params()
    assert source.file.path == "x.csv" and source.file.plays_column is None
    assert source.synthetic.n_users == 5 and source.synthetic.n_items == 3000


def test_the_pipeline_and_plain_calls_mean_the_same_engine():
    """ALSParams() in a benchmark or a test is what the pipeline trains by default, and the
    tuning trials use it too unless told otherwise: auto, on small data the broadcast fit in
    the driver (local: test_als_engines checks it equals broadcast), on Spark above."""
    from recsys_dagster.ml.als.params import LOCAL_MAX_RATINGS, resolve_engine

    assert config.ALSConfig().params() == ALSParams()
    assert TuningParams().solver == ALSParams().solver
    assert TuningParams().engine == ALSParams().engine == "auto"
    assert TuningParams().trial_engine(LOCAL_MAX_RATINGS + 1) == "broadcast"
    assert TuningParams().trial_engine(LOCAL_MAX_RATINGS) == "local"
    assert ALSParams().blocked(LOCAL_MAX_RATINGS).engine == "local"
    assert ALSParams().blocked(LOCAL_MAX_RATINGS + 1).engine == "broadcast"
    for engine in ("broadcast", "local", "mllib", "half_gridify"):  # only auto is resolved
        assert resolve_engine(engine, 1) == resolve_engine(engine, 10**9) == engine
        assert ALSParams(engine=engine).blocked(10).engine == engine


def test_automatic_block_counts_come_from_the_number_of_ratings():
    from recsys_dagster.ml.als.params import RATINGS_PER_BLOCK

    auto = ALSParams()
    assert (auto.num_user_blocks, auto.num_item_blocks) == (0, 0)
    assert auto.blocked(0).num_user_blocks == 1 and auto.blocked(1).num_item_blocks == 1
    big = auto.blocked(2 * RATINGS_PER_BLOCK + 1)
    assert (big.num_user_blocks, big.num_item_blocks) == (3, 3)
    mixed = ALSParams(num_user_blocks=5).blocked(10)
    assert (mixed.num_user_blocks, mixed.num_item_blocks) == (5, 1)
    with pytest.raises(ValueError, match="block counts"):
        ALSParams(num_item_blocks=-1).validate()
