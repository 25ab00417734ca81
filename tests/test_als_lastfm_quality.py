"""Issue 5's quality bar on real data: on lastfm-2k our Spark engine (broadcast, cg: the
best strategy the speed targets are about; the default, auto, fits the same in the driver on
data this size) reaches MLlib's precision@10 within 2%, relative,
at equal rank, iterations and regularisation. Measured with benchmarks/als_engines_lastfm.py:
broadcast cg +3.0%, half gridify cg +0.3% (left out here to keep the suite under 20 minutes:
its fit costs 13 s; it is held to MLlib's objective on small data in test_als_engines.py, as
the exact solvers are held to MLlib's own iteration)."""

import pytest

from recsys_dagster.ml.als import ALSParams, train_als
from recsys_dagster.ml.als.confidence import ConfidenceParams, confidence_matrix
from recsys_dagster.ml.evaluation.evaluate import build_catalogue, score_als
from recsys_dagster.ml.evaluation.split import holdout_split
from recsys_dagster.ml.ingest import sources
from recsys_dagster.ml.ingest.indexing import index_and_build
from recsys_dagster.ml.ingest.validation import validate_plays


@pytest.fixture(scope="module")
def lastfm_split(spark, lastfm_dir):
    events, _ = validate_plays(sources.read_lastfm_user_artists(spark, lastfm_dir))
    fit, held = holdout_split(index_and_build(events), 0.2, 7, temporal=False)
    fit, held = fit.persist(), held.persist()
    conf = confidence_matrix(fit, ConfidenceParams()).persist()
    yield fit, held, conf, build_catalogue(fit)
    for df in (fit, held, conf):
        df.unpersist()


def precision_at_10(lastfm_split, engine: str, solver: str) -> float:
    fit, held, conf, catalogue = lastfm_split
    params = ALSParams(rank=64, reg_param=0.1, reg_exponent=1.0, max_iter=10, engine=engine,
                       solver=solver)  # MLlib's regularisation, for both
    per_user = score_als(train_als(conf, params), fit, held, catalogue, 10).toPandas()
    assert len(per_user) > 1500  # most of the 1,892 users are scored, not a handful
    return float(per_user["precision"].mean())


def test_default_engine_matches_mllib_precision_on_lastfm(lastfm_split):
    mllib = precision_at_10(lastfm_split, "mllib", "exact")
    assert 0.15 < mllib < 0.25  # MLlib itself lands where the benchmark measured it (0.196)
    ours = precision_at_10(lastfm_split, "broadcast", "cg")
    assert ours >= 0.98 * mllib, (ours, mllib)  # measured 0.2021 against 0.1962
