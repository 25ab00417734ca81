"""Run configuration: one dg.Config class per asset that has knobs, with documented defaults."""


from typing import Literal, Optional

import dagster as dg
from pydantic import Field

from .ml.als.params import ALSParams
from .ml.confidence import ConfidenceParams
from .ml.datagen import SyntheticSpec
from .ml.validation import DEFAULT_MAX_PLAYS


class SyntheticConfig(dg.Config):
    """Size and shape of the seeded synthetic play logs."""

    n_users: int = Field(default=2000, description="Number of listeners.")
    n_items: int = Field(default=3000, description="Number of songs.")
    n_artists: int = Field(default=400, description="Artists; songs per artist are heavy-tailed.")
    n_genres: int = Field(default=12, description="Genres; each user likes a few.")
    mean_items_per_user: float = Field(default=25.0, description="Mean distinct songs per user.")
    zipf_exponent: float = Field(default=0.9, description="Song popularity ~ 1 / rank^s.")
    n_days: int = Field(default=90, description="Days of listening covered by the timestamps.")
    start_date: str = Field(default="2024-01-01", description="First day (UTC), ISO date.")
    seed: int = Field(default=42, description="RNG seed; same seed, same data.")

    def spec(self) -> SyntheticSpec:
        return SyntheticSpec(
            n_users=self.n_users, n_items=self.n_items, n_artists=self.n_artists,
            n_genres=self.n_genres, mean_items_per_user=self.mean_items_per_user,
            zipf_exponent=self.zipf_exponent, n_days=self.n_days, start_date=self.start_date,
            seed=self.seed,
        )


class FileSourceConfig(dg.Config):
    """A CSV/TSV/Parquet play log and how its columns map to ours."""

    path: str = Field(default="", description="File or folder of files.")
    format: Literal["csv", "tsv", "parquet"] = Field(default="csv", description="File format.")
    header: bool = Field(default=True, description="CSV/TSV: first line names the columns.")
    user_column: str = Field(default="user_id", description="Column with the user id.")
    item_column: str = Field(default="item_id", description="Column with the item id.")
    plays_column: Optional[str] = Field(
        default="plays",
        description="Column with play counts (aggregated logs). Null: an event log, one row "
        "per play, aggregated by the pipeline.",
    )
    timestamp_column: Optional[str] = Field(
        default=None, description="Column with the play time (ISO-8601 or epoch s/ms)."
    )
    item_names_path: Optional[str] = Field(
        default=None, description="Optional CSV/TSV with item names (same format)."
    )
    item_names_id_column: str = Field(default="item_id", description="Id column of names file.")
    item_names_name_column: str = Field(default="name", description="Name column of names file.")


class PlayEventsConfig(dg.Config):
    """Where the play logs come from, and what counts as bad input."""

    source: Literal["synthetic", "lastfm_hetrec", "file", "seed"] = Field(
        default="synthetic",
        description="synthetic (default), lastfm_hetrec (HetRec 2011 folder), file, or seed "
        "(the seven-play known-answer example).",
    )
    lastfm_dir: str = Field(
        default="../shared/data/lastfm-2k",
        description="Folder holding user_artists.dat and artists.dat.",
    )
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    file: FileSourceConfig = Field(default_factory=FileSourceConfig)
    max_plays: int = Field(
        default=DEFAULT_MAX_PLAYS, description="Play counts above this in one row are absurd."
    )
    max_quarantine_fraction: float = Field(
        default=0.05, description="The quarantine check fails above this share of input rows."
    )


class ConfidenceConfig(dg.Config):
    """c = 1 + alpha * f(plays)."""

    weighting: Literal["linear", "log", "bm25"] = Field(
        default="log",
        description="f: linear (plays), log (log1p(plays/eps)) or bm25 (as in `implicit`).",
    )
    alpha: float = Field(
        default=1.0,
        description="Confidence scale alpha. Default from lastfm-2k: log with alpha 1 gave "
        "precision@10 0.196 vs 0.136 at alpha 40 (benchmarks/confidence_weighting.py).",
    )
    eps: float = Field(default=1.0, description="log weighting: plays are divided by eps.")
    bm25_k1: float = Field(default=100.0, description="bm25 saturation K1.")
    bm25_b: float = Field(default=0.8, description="bm25 length normalisation B.")
    use_tuned: bool = Field(
        default=False,
        description="Take weighting and alpha from als_tuning's best trial (when it ran).",
    )

    def params(self) -> ConfidenceParams:
        return ConfidenceParams(self.weighting, self.alpha, self.eps, self.bm25_k1, self.bm25_b)


Engine = Literal["mllib", "broadcast", "half_gridify", "full_gridify"]
DEFAULT_ENGINE, DEFAULT_SOLVER = "broadcast", "cg"


class ALSConfig(dg.Config):
    """Implicit ALS hyperparameters (MLlib conventions: lambda scaled by ratings per row)."""

    engine: Engine = Field(
        default=DEFAULT_ENGINE,
        description="ALS implementation: Spark MLlib's, or ours: every factor broadcast "
        "(the default: fastest at equal quality, README 'ALS strategies'), half gridify (each "
        "block gets the factors it needs) or full gridify (partial normal equations per grid "
        "block, summed per row; exact solver only). nonnegative needs mllib.")
    solver: Literal["exact", "cg"] = Field(
        default=DEFAULT_SOLVER,
        description="Row solver of our engines: exact, or conjugate gradient (cg_steps).")
    cg_steps: int = Field(default=3, description="CG steps per row and half-step.")
    scale_reg: bool = Field(
        default=True, description="MLlib's convention: lambda times the row's rating count.")
    rank: int = Field(default=32, description="Number of latent factors.")
    max_iter: int = Field(default=10, description="ALS iterations (each solves users, items).")
    reg_param: float = Field(default=0.1, description="Regularisation lambda.")
    seed: int = Field(default=42, description="Seed of the factor initialisation.")
    num_user_blocks: int = Field(default=4, description="User blocks (MLlib partitions).")
    num_item_blocks: int = Field(default=4, description="Item blocks (MLlib partitions).")
    checkpoint_interval: int = Field(
        default=5, description="Checkpoint every N iterations (needs the checkpoint dir)."
    )
    nonnegative: bool = Field(default=False, description="Constrain factors to be >= 0.")
    use_tuned: bool = Field(
        default=False,
        description="Take rank, reg_param and max_iter from als_tuning's best trial (when it ran).",
    )

    def params(self) -> ALSParams:
        return ALSParams(
            rank=self.rank, max_iter=self.max_iter, reg_param=self.reg_param, seed=self.seed,
            num_user_blocks=self.num_user_blocks, num_item_blocks=self.num_item_blocks,
            checkpoint_interval=self.checkpoint_interval, nonnegative=self.nonnegative,
            engine=self.engine, solver=self.solver, cg_steps=self.cg_steps,
            scale_reg=self.scale_reg,
        )


class SplitConfig(dg.Config):
    """Train / validation / test split, per user, seeded."""

    validation_fraction: float = Field(default=0.1, description="Share of each user's items for "
                                       "validation (tuning looks only at these).")
    test_fraction: float = Field(default=0.2, description="Share of each user's items for test "
                                 "(reported and gating numbers).")
    split: Literal["auto", "temporal", "random"] = Field(
        default="auto",
        description="auto: temporal when every play has a timestamp, else seeded per-user random.",
    )
    seed: int = Field(default=7, description="Seed of the random split.")


class TuningConfig(dg.Config):
    """Search over confidence weighting, alpha, rank, regularisation and iterations."""

    search: Literal["none", "grid", "random"] = Field(
        default="none", description="none (skip), grid (every combination) or random.")
    n_trials: int = Field(default=16, description="Random search: number of trials.")
    seed: int = Field(default=13, description="Random search: seed.")
    k: int = Field(default=10, description="Cut-off of the validation metric.")
    metric: Literal["precision", "recall", "ndcg", "map"] = Field(
        default="precision", description="Validation metric to maximise.")
    parallelism: int = Field(default=2, description="Trials run concurrently (Spark jobs).")
    engine: Engine = Field(default=DEFAULT_ENGINE,
                           description="ALS engine of the trials (as als_model's).")
    solver: Literal["exact", "cg"] = Field(default=DEFAULT_SOLVER,
                                           description="Row solver of the trials.")
    weighting: list[str] = Field(default_factory=lambda: ["log", "bm25", "linear"],
                                 description="Confidence weightings to try.")
    alpha: list[float] = Field(default_factory=lambda: [0.1, 0.3, 1.0, 3.0, 10.0],
                               description="alpha values (random: log-uniform in the range).")
    rank: list[int] = Field(default_factory=lambda: [32, 64, 128], description="Ranks to try.")
    reg_param: list[float] = Field(default_factory=lambda: [0.01, 0.03, 0.1, 0.3, 1.0],
                                   description="lambda values (random: log-uniform in range).")
    max_iter: list[int] = Field(default_factory=lambda: [10], description="Iterations to try.")


class EvaluationConfig(dg.Config):
    """Test-set evaluation of the model configuration against popularity and item-kNN."""

    k: int = Field(default=10, description="Cut-off K of the ranking metrics.")
    primary_metric: Literal["precision", "recall", "ndcg", "map"] = Field(
        default="precision", description="Metric the publication gate compares.")
    min_lift: float = Field(
        default=0.0,
        description="The gate also needs ALS >= popularity * (1 + min_lift) on the primary metric.",
    )
    max_regression: float = Field(
        default=0.02,
        description="Champion/challenger: the new model may be at most this share worse than "
        "the served one on the primary metric.",
    )
    n_bootstrap: int = Field(default=1000, description="Bootstrap resamples over users.")
    seed: int = Field(default=0, description="Bootstrap seed.")
    knn_neighbours: int = Field(default=100, description="Neighbours per item for item-kNN.")
    max_users: int = Field(
        default=50_000, description="Score a seeded sample of this many test users (the model "
        "is still fitted on all); 0 = every test user.")
    knn_max_users: int = Field(
        default=200_000, description="item-kNN co-listening from a seeded sample of this many "
        "users; 0 = all.")
    knn_max_items_per_user: int = Field(
        default=1000, description="item-kNN co-listening: at most this many items of one user "
        "(seeded sample); 0 = all.")


class RecommendationsConfig(dg.Config):
    top_n: int = Field(default=20, description="Recommendations per user.")
    exclude_played: bool = Field(default=True, description="Never recommend an already-played item.")


class SimilarItemsConfig(dg.Config):
    top_n: int = Field(default=20, description="Similar items per item.")
