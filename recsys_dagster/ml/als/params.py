"""ALS hyperparameters (one definition of every default) and the factor tables a fit returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from .. import setting

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

Engine = Literal["auto", "broadcast", "half_gridify", "full_gridify", "mllib", "local"]
Solver = Literal["exact", "cg"]
ENGINES = Engine.__args__
SOLVERS = Solver.__args__
# Automatic block counts: one block per this many ratings. Each block is a Spark task per
# half-step with a fixed cost of its own, so fewer, larger blocks fit faster wherever the
# cores are few (benchmarks/README.md, "Volume"); set the counts to spread a fit wider.
RATINGS_PER_BLOCK = 1_000_000
# Engine auto: a fit of at most this many ratings runs in the driver (local), where Spark's
# fixed cost per task and per job is most of a small fit's time (benchmarks/README.md, "Small
# runs"); a larger one runs on Spark with the broadcast engine. At most one block a side is
# cut below it, so the two give the same factors (tests/test_als_engines.py).
LOCAL_MAX_RATINGS = RATINGS_PER_BLOCK
SPARK_ENGINE = "broadcast"  # engine auto's choice above LOCAL_MAX_RATINGS


def resolve_engine(engine: Engine, n_ratings: int) -> Engine:
    """The engine that fits n_ratings ratings: `engine` itself unless it is auto."""
    if engine != "auto":
        return engine
    return "local" if n_ratings <= LOCAL_MAX_RATINGS else SPARK_ENGINE


@dataclass(frozen=True)
class ALSParams:
    """Implicit ALS (Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback
    Datasets", 2008) with MLlib's conventions: lambda scaled by each row's rating count."""

    engine: Engine = setting(
        "auto", "ALS implementation: ours, after the talk's three strategies (broadcast: "
        "every factor sent to every task, the fastest on Spark where factors fit an executor; "
        "half_gridify: each block gets only the factors it needs; full_gridify: partial "
        "normal equations per grid block, exact solver only), or Spark MLlib's (mllib; the "
        "only one with nonnegative factors); local runs the broadcast fit in the driver "
        f"process; auto (the default) is local up to {LOCAL_MAX_RATINGS:,} ratings and "
        f"{SPARK_ENGINE} above. docs/architecture.md compares them.")
    solver: Solver = setting(
        "cg", "Row solver of our engines: exact (normal equations) or cg (a few conjugate-"
        "gradient steps from the previous factors).")
    cg_steps: int = setting(3, "CG steps per row and half-step.")
    scale_reg: bool = setting(True, "MLlib's convention: lambda times the row's rating count.")
    reg_exponent: float = setting(
        0.7, "With scale_reg, lambda times the row's rating count to this power (nu in Rendle, "
        "Krichene, Zhang & Koren 2022, 'Revisiting the Performance of iALS on Item "
        "Recommendation Benchmarks'): 1 is MLlib's convention, 0 a plain lambda. Our engines "
        "only; mllib needs 1. 0.7 with lambda 2.5: chosen on the validation splits of the demo "
        "data and Last.fm together (benchmarks/als_defaults.py, docs/products.md).")
    rank: int = setting(64, "Number of latent factors (64: as good as 32 on the demo's "
                        "validation split, better on Last.fm's; benchmarks/als_defaults.py).")
    max_iter: int = setting(10, "ALS iterations (each solves items, then users).")
    reg_param: float = setting(2.5, "Regularisation lambda (see reg_exponent).")
    seed: int = setting(42, "Seed of the factor initialisation.")
    num_user_blocks: int = setting(
        0, "User blocks (one Spark partition each); 0 = one per RATINGS_PER_BLOCK ratings "
        "(at least one), chosen from the data alone so that a fit does not depend on the "
        "cluster it runs on.")
    num_item_blocks: int = setting(0, "Item blocks (one Spark partition each); 0 as for users.")
    checkpoint_interval: int = setting(
        5, "mllib: checkpoint every N iterations (needs the checkpoint dir).")
    nonnegative: bool = setting(False, "mllib only: constrain factors to be >= 0.")

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.nonnegative and self.engine != "mllib":
            raise ValueError("nonnegative factors are only offered by engine 'mllib' (its "
                             "NNLS solver); our engines solve unconstrained")
        if self.engine == "full_gridify" and self.solver != "exact":
            raise ValueError("full_gridify sums partial normal equations and solves them "
                             "exactly; use solver 'exact' (or engine half_gridify/broadcast "
                             "for cg)")
        if self.cg_steps < 1:
            raise ValueError("cg_steps must be >= 1")
        if self.rank < 1 or self.max_iter < 1:
            raise ValueError("rank and max_iter must be >= 1")
        if self.reg_param < 0:
            raise ValueError("reg_param must be >= 0")
        if self.reg_exponent < 0:
            raise ValueError("reg_exponent must be >= 0")
        if self.engine == "mllib" and (self.reg_exponent != 1.0 or not self.scale_reg):
            raise ValueError("engine 'mllib' always scales lambda by the rating count "
                             "(scale_reg true, reg_exponent 1, MLlib's convention); set them so, "
                             "or use one of our engines for another regularisation")
        if self.num_user_blocks < 0 or self.num_item_blocks < 0:
            raise ValueError("block counts must be >= 1, or 0 (from the data's size)")
        if self.checkpoint_interval < 1:
            raise ValueError("checkpoint_interval must be >= 1")

    def as_dict(self) -> dict:
        return asdict(self)

    def blocked(self, n_ratings: int) -> ALSParams:
        """These settings for n_ratings ratings: engine auto resolved (resolve_engine) and
        every automatic (0) block count too. Each block is one Spark task per half-step, and on
        small data the tasks' fixed cost (scheduling, Python worker, Arrow) outweighs their
        work: docs/testing.md."""
        auto = max(1, -(-n_ratings // RATINGS_PER_BLOCK))
        return replace(self, engine=resolve_engine(self.engine, n_ratings),
                       num_user_blocks=self.num_user_blocks or auto,
                       num_item_blocks=self.num_item_blocks or auto)


@dataclass
class Factors:
    """user_factors and item_factors: Spark DataFrames of (idx int, features array<float>)."""

    user_factors: object
    item_factors: object
    timings: dict = field(default_factory=dict)
    blocks: tuple[int, int] = ()  # (user blocks, item blocks) the fit used
    engine: str = ""  # the engine that fitted them (engine auto resolved)


@dataclass(frozen=True)
class Side:
    """One side's state between half-steps: `frame` is the Spark DataFrame that holds its
    current factors (dropped by the loop once a newer one exists), `state` whatever else the
    engine keeps for it (a driver-side matrix, a Gram matrix, cached blocks)."""

    frame: DataFrame
    state: Any = None
