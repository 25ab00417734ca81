"""ALS hyperparameters and the factor tables every engine returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ENGINES = ("mllib", "broadcast", "half_gridify", "full_gridify")
SOLVERS = ("exact", "cg")


@dataclass(frozen=True)
class ALSParams:
    rank: int = 32
    max_iter: int = 10
    reg_param: float = 0.1
    seed: int = 42
    num_user_blocks: int = 4
    num_item_blocks: int = 4
    checkpoint_interval: int = 5
    nonnegative: bool = False
    engine: str = "mllib"
    solver: str = "exact"  # our engines: exact (Cholesky-class solve) or cg
    cg_steps: int = 3
    scale_reg: bool = True  # MLlib's convention: lambda times the row's number of ratings

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.engine == "full_gridify" and self.solver != "exact":
            raise ValueError("full_gridify sums partial normal equations and solves them "
                             "exactly; use solver 'exact' (or engine half_gridify/broadcast "
                             "for cg)")
        if self.nonnegative and self.engine != "mllib":
            raise ValueError("nonnegative factors are only offered by engine 'mllib' (its "
                             "NNLS solver); our engines solve unconstrained")
        if self.cg_steps < 1:
            raise ValueError("cg_steps must be >= 1")
        if self.rank < 1 or self.max_iter < 1:
            raise ValueError("rank and max_iter must be >= 1")
        if self.reg_param < 0:
            raise ValueError("reg_param must be >= 0")
        if self.num_user_blocks < 1 or self.num_item_blocks < 1:
            raise ValueError("block counts must be >= 1")
        if self.checkpoint_interval < 1:
            raise ValueError("checkpoint_interval must be >= 1")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Factors:
    """user_factors and item_factors: (idx int, features array<float>)."""

    user_factors: object
    item_factors: object
    timings: dict = field(default_factory=dict)
