"""Where an iteration of the broadcast engine goes, on a run's own confidence table (the pairs
the served model was fitted on). Each half-step is timed in two parts: the solve, a Spark job
that ships the other side's factors to the Python workers, streams every rating block to them
through Arrow, solves its rows and writes the new block records back (a local checkpoint);
then the gather of the new factors and Gram partials to the driver through Arrow. Beside it,
in the same process: the same fit with a row solver that returns the rows' current factors
(what moving the blocks and factors costs without solving), the local engine's fit in
the driver (the same solver on the same blocks' ratings, no Spark: the solve alone), the
plain broadcast fit (one job a half-step, as the pipeline runs it) with the data's blocks and
with half the blocks a side (half the tasks per job); and a job over the
item blocks that solves nothing, handed the whole block records or only the
block numbers (what moving the ratings to the Python workers costs).

    .venv/bin/python benchmarks/broadcast_iteration.py --data DIR [--iterations 5] [--rank 32]

DIR: a warehouse a pipeline run left, e.g. `benchmarks/volume.py --millions 5 --workdir W`
leaves W/5M/data. Settings: the run's confidence table, the default engine's solver (cg),
block counts from the data as a fit picks them; a one-iteration fit first, untimed, starts
the Python workers (a pipeline's fit finds them started). Prints seconds per half-step,
medians over the iterations (the first iteration included).
"""

import argparse
import dataclasses
import os
import statistics
import time
from dataclasses import dataclass

from _common import spark_session

from recsys_dagster.ml.als import ALSParams
from recsys_dagster.ml.als.blocks import collect_factors, rating_blocks
from recsys_dagster.ml.als.broadcast import BroadcastEngine, Collected, solve_blocks
from recsys_dagster.ml.als.fit import ENGINES, train_als
from recsys_dagster.ml.als.params import Side
from recsys_dagster.tables import TableStore

TIMES: dict[str, list[float]] = {}


def lap(key: str, seconds: float) -> None:
    TIMES.setdefault(key, []).append(seconds)


class SplitBroadcast(BroadcastEngine):
    """The broadcast engine, its half-step's solve job and gather timed apart."""

    label = "broadcast"

    def half_step(self, solving: Side, given: Side) -> Side:
        side = side_of(self)
        other = given.state
        t0 = time.perf_counter()
        solved = solve_blocks(solving.frame, other.dense, other.gram, self.params.rank,
                              self.solver)
        solved.count()  # materialises the local checkpoint: the solve job alone
        t1 = time.perf_counter()
        n_rows = solving.state.n_rows
        state = Collected(*collect_factors(solved, n_rows, self.params.rank), n_rows)
        lap(f"{self.label} {side}: solve job", t1 - t0)
        lap(f"{self.label} {side}: gather", time.perf_counter() - t1)
        return Side(solved, state)


def side_of(engine) -> str:
    """The side a half-step solves: items first, then users (the fit's order)."""
    engine.calls = getattr(engine, "calls", 0) + 1
    return "items" if engine.calls % 2 else "users"


@dataclass(frozen=True)
class KeepRows:
    """A row solver that solves nothing: each row keeps its current factors."""

    needs_start = True
    float64_gram = False

    def __call__(self, y, yty, indptr, indices, conf, x0=None):
        return x0.copy()


class MovingOnly(SplitBroadcast):
    label = "no solve"

    def __init__(self, params, solver):
        super().__init__(params, KeepRows())


class TimedLocal(ENGINES["local"]):
    def half_step(self, solving, given):
        side = side_of(self)
        t0 = time.perf_counter()
        out = super().half_step(solving, given)
        lap(f"local {side}: the solve in the driver", time.perf_counter() - t0)
        return out


def _block_numbers(batches):
    for pdf in batches:
        yield pdf[["blk"]]


def empty_jobs(conf, params: ALSParams, repeats: int = 5) -> None:
    """What a half-step's job costs with nothing solved: a job over the item blocks that
    returns each block's number, handed the whole block records (ratings and factors) or
    only the block numbers: the difference is what moving the ratings to the Python workers
    costs, which blocks kept in the workers would save."""
    _, by_item = rating_blocks(conf, params.num_user_blocks, params.num_item_blocks,
                               params.rank, params.seed, routed=False)
    for label, frame in (("whole block records", by_item),
                         ("block numbers only", by_item.select("blk"))):
        for _ in range(repeats):
            t0 = time.perf_counter()
            frame.mapInPandas(_block_numbers, "blk int").collect()
            lap(f"job solving nothing: {label}", time.perf_counter() - t0)
    by_item.unpersist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--rank", type=int, default=32)
    args = parser.parse_args()
    spark = spark_session("local")
    store = TableStore(os.path.abspath(args.data))
    conf = store.read(spark, "confidence_matrix")["matrix"].persist()
    n = conf.count()
    params = ALSParams(rank=args.rank, max_iter=args.iterations)
    print(f"{n:,} ratings, rank {args.rank}, {args.iterations} iterations, solver "
          f"{params.solver}")
    train_als(conf, dataclasses.replace(params, max_iter=1), n_ratings=n)  # starts the workers
    blocked = params.blocked(n)
    halved = dataclasses.replace(blocked, num_user_blocks=max(1, blocked.num_user_blocks // 2),
                                 num_item_blocks=max(1, blocked.num_item_blocks // 2))
    walls = {}
    for name, engine, cls, settings in (
            ("broadcast", "broadcast", SplitBroadcast, params),
            ("no solve", "broadcast", MovingOnly, params),
            ("local", "local", TimedLocal, params),
            ("plain", "broadcast", BroadcastEngine, params),
            ("half the blocks", "broadcast", BroadcastEngine, halved)):
        saved = ENGINES[engine]
        ENGINES[engine] = cls
        try:
            t0 = time.perf_counter()
            fit = train_als(conf, dataclasses.replace(settings, engine=engine), n_ratings=n)
            walls[name] = (time.perf_counter() - t0, fit.timings["fit_seconds"])
        finally:
            ENGINES[engine] = saved
    empty_jobs(conf, params.blocked(n))
    for name, (wall, fit_s) in walls.items():
        print(f"{name:15s} fit {fit_s:6.1f} s (blocking included), with the factor tables "
              f"{wall:6.1f} s")
    print(f"\n{'half-step part':42s} {'median s':>9s} {'sum s':>7s}")
    for key, values in TIMES.items():
        print(f"{key:42s} {statistics.median(values):9.2f} {sum(values):7.1f}")


if __name__ == "__main__":
    main()
