"""Our ALS engines: the row kernels, and whole fits compared with Spark MLlib."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from helpers import random_confidence

from recsys_dagster.ml.als import ALSParams, full_gridify, half_gridify, kernels, train_als
from recsys_dagster.ml.als.blocks import (
    BLOCK_SCHEMA,
    collect_factors,
    csr,
    gram,
    partition_keys,
    rating_blocks,
    unpack,
    with_factors,
)
from recsys_dagster.ml.als.broadcast import solve_blocks
from recsys_dagster.ml.als.confidence import ConfidenceParams, confidence_matrix
from recsys_dagster.ml.als.kernels import row_solver, solve_cg, solve_exact
from recsys_dagster.ml.ids import factor_matrix


def csr_block(rng, n_rows, n_other, per_row):
    counts = rng.integers(0, per_row, n_rows)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    indices = np.concatenate([rng.choice(n_other, c, replace=False) for c in counts])
    conf = 1.0 + rng.gamma(1.0, 3.0, indices.size).astype(np.float32)
    return indptr, indices.astype(np.int64), conf


@pytest.mark.parametrize("scale_reg,chunk", [(True, 2048), (False, 2048), (True, 7)])
def test_exact_kernel_solves_each_rows_dense_normal_equations(scale_reg, chunk, monkeypatch):
    """Against the textbook form: Yᵀ C_u Y + λ_u I with the whole catalogue's confidences
    (1 where unrated) and preferences p_u, solved row by row."""
    monkeypatch.setattr(kernels, "EXACT_CHUNK", chunk)  # 7: 30 rows in five chunks
    rng = np.random.default_rng(0)
    y = rng.standard_normal((50, 7)).astype(np.float32)
    yty = y.astype(np.float64).T @ y.astype(np.float64)
    indptr, indices, conf = csr_block(rng, 30, 50, 12)
    got = solve_exact(y, yty, indptr, indices, conf, 0.1, scale_reg)
    y64 = y.astype(np.float64)
    for u in range(30):
        lo, hi = indptr[u], indptr[u + 1]
        c, p = np.ones(50), np.zeros(50)
        c[indices[lo:hi]], p[indices[lo:hi]] = conf[lo:hi], 1.0
        lam = 0.1 * ((hi - lo) if scale_reg else 1.0)
        want = (np.linalg.solve(y64.T @ (c[:, None] * y64) + lam * np.eye(7), y64.T @ (c * p))
                if hi > lo else np.zeros(7))
        np.testing.assert_allclose(got[u], want, rtol=1e-4, atol=1e-5)


def test_cg_converges_to_the_exact_solution():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((60, 8)).astype(np.float32)
    yty = y.astype(np.float64).T @ y.astype(np.float64)
    indptr, indices, conf = csr_block(rng, 25, 60, 15)
    exact = solve_exact(y, yty, indptr, indices, conf, 0.05)
    start = np.zeros_like(exact)
    # CG on an r x r system is exact after r steps (up to rounding); 3 steps already get close.
    np.testing.assert_allclose(solve_cg(y, yty, indptr, indices, conf, 0.05, start, steps=8),
                               exact, rtol=1e-3, atol=1e-4)
    three = solve_cg(y, yty, indptr, indices, conf, 0.05, start, steps=3)
    assert np.abs(three - exact).max() < np.abs(start - exact).max()


def small_confidence(spark):
    return random_confidence(spark, 120, 80, 1500)


def predictions(factors):
    _, x = factor_matrix(factors.user_factors)
    _, y = factor_matrix(factors.item_factors)
    return x @ y.T


def dense(factors_df, n):
    ids, mat = factor_matrix(factors_df)
    out = np.zeros((n, mat.shape[1]), dtype=np.float32)
    out[ids] = mat
    return out


# MLlib's convention (lambda times the rating count) for every engine compared with it.
MLLIB = dict(rank=6, reg_param=0.1, reg_exponent=1.0, num_user_blocks=2, num_item_blocks=3)


@pytest.fixture(scope="module")
def mllib_iteration(spark):
    """(confidence, MLlib after k = 4 iterations, after k + 1): the same seed and blocks, so
    its first k iterations are the same in both fits."""
    conf = small_confidence(spark)
    return (conf, train_als(conf, ALSParams(**MLLIB, engine="mllib", max_iter=4)),
            train_als(conf, ALSParams(**MLLIB, engine="mllib", max_iter=5)))


def test_broadcast_half_steps_reproduce_an_mllib_iteration(mllib_iteration):
    """From MLlib's state after k iterations, one iteration of ours (items given users, then
    users given items, as MLlib orders them) gives MLlib's iteration k+1."""
    conf, k_iter, k_plus_1 = mllib_iteration
    common = dict(rank=6, reg_param=0.1, num_user_blocks=2, num_item_blocks=2,
                  reg_exponent=1.0)
    users, items = dense(k_iter.user_factors, 120), dense(k_iter.item_factors, 80)
    solver = row_solver(ALSParams(**common, engine="broadcast", solver="exact"))
    by_user, by_item = rating_blocks(conf, 2, 2, rank=6, seed=0)
    items, items_gram, _ = collect_factors(solve_blocks(by_item, users, gram(users), 6, solver),
                                           80, 6)
    np.testing.assert_allclose(items_gram, gram(items), rtol=1e-9, atol=1e-9)
    users, _, _ = collect_factors(solve_blocks(by_user, items, items_gram, 6, solver), 120, 6)
    ours = users @ items.T
    theirs = predictions(k_plus_1)
    assert np.abs(ours - theirs).max() < 2e-3, np.abs(ours - theirs).max()


def holding(blocks, mat):
    """The blocks with their factors replaced by rows of a dense matrix."""
    def put(batches):
        for pdf in batches:
            for _, record in pdf.iterrows():
                rows = np.frombuffer(record["rows"], np.int32)
                yield pd.DataFrame([with_factors(record, mat[rows])])

    return blocks.mapInPandas(put, BLOCK_SCHEMA)


@pytest.mark.parametrize("engine", ["half_gridify", "full_gridify"])
def test_gridified_half_steps_reproduce_an_mllib_iteration(spark, mllib_iteration, engine):
    """The same known answer for the gridified strategies, whose factors never leave Spark."""
    conf, k_iter, k_plus_1 = mllib_iteration
    solver = row_solver(ALSParams(**MLLIB, engine=engine, solver="exact"))
    users, items = k_iter.user_factors, k_iter.item_factors
    if engine == "half_gridify":
        hg = half_gridify
        by_user, by_item = rating_blocks(conf, 2, 3, rank=6, seed=0)
        uk, ik = partition_keys(spark, 2), partition_keys(spark, 3)
        x_out = hg.initial_stream(holding(by_user, dense(users, 120)), ik, 6)
        y_out = hg.half_gridify_step(by_item, hg.incoming(x_out, None, 3), uk,
                                     gram(dense(users, 120)), 6, solver)
        x_out = hg.half_gridify_step(by_user, hg.incoming(y_out, None, 2), ik,
                                     hg.stream_gram(y_out, 6), 6, solver)
        users, items = hg.stream_factors(x_out, 6), hg.stream_factors(y_out, 6)
    else:
        fg = full_gridify
        grid_i = fg.full_gridify_grid(conf, "item_idx", "user_idx", 3, 2)
        grid_u = fg.full_gridify_grid(conf, "user_idx", "item_idx", 2, 3)
        items = fg.full_gridify_step(grid_i, users, fg.frame_gram(users, 6), solver, 3,
                                     2).localCheckpoint()
        users = fg.full_gridify_step(grid_u, items, fg.frame_gram(items, 6), solver, 2, 3)
    ours = dense(users, 120) @ dense(items, 80).T
    assert np.abs(ours - predictions(k_plus_1)).max() < 2e-3


FIT = dict(rank=6, max_iter=15, reg_param=0.1, reg_exponent=1.0, num_user_blocks=2,
           num_item_blocks=2)


@pytest.fixture(scope="module")
def objective(spark):
    """(confidence, loss of a fit, MLlib's loss): MLlib is fitted once for every engine."""
    conf = small_confidence(spark)
    pdf = conf.toPandas()
    c = np.ones((120, 80))
    c[pdf.user_idx, pdf.item_idx] = pdf.confidence
    p = np.zeros((120, 80))
    p[pdf.user_idx, pdf.item_idx] = 1.0
    n_u, n_i = p.sum(1), p.sum(0)

    def loss(f):
        x, y = dense(f.user_factors, 120), dense(f.item_factors, 80)
        err = (c * (p - x @ y.T) ** 2).sum()
        return err + 0.1 * ((n_u * (x ** 2).sum(1)).sum() + (n_i * (y ** 2).sum(1)).sum())

    return conf, loss, loss(train_als(conf, ALSParams(**FIT, engine="mllib")))


@pytest.mark.parametrize("engine,solver", [("broadcast", "exact"), ("broadcast", "cg"),
                                           ("half_gridify", "cg"), ("full_gridify", "exact")])
def test_our_fits_are_as_good_as_mllib(objective, engine, solver):
    """Whole fits start from different random factors, so factors differ; the objective they
    reach (weighted squared error + regularisation) must be within 3% of MLlib's (measured:
    exact +1.2%, cg +1.4% after 15 iterations: different starts, different local optima)."""
    conf, loss, mllib = objective
    ours = loss(train_als(conf, ALSParams(**FIT, engine=engine, solver=solver)))
    assert ours <= mllib * 1.03, (ours, mllib)


@pytest.mark.parametrize("engine", ["broadcast", "half_gridify", "local"])
def test_engine_checkerboard(spark, engine):
    # Users 0..4 each play items 0..4 except their own index; the rest of the block agrees.
    rows = [(u, i, 10) for u in range(10) for i in range(10) if (u < 5) == (i < 5) and u != i]
    inter = spark.createDataFrame(rows, "user_idx int, item_idx int, plays long")
    f = train_als(confidence_matrix(inter, ConfidenceParams()),
                  ALSParams(rank=4, max_iter=6, reg_param=0.05, engine=engine,
                            solver="exact"))
    scores = predictions(f)
    for u in range(10):
        unseen = [i for i in range(10) if i == u or (u < 5) != (i < 5)]
        assert max(unseen, key=lambda i: scores[u, i]) == u


def test_full_gridify_refuses_cg():
    with pytest.raises(ValueError, match="full_gridify.*exact"):
        ALSParams(engine="full_gridify", solver="cg").validate()


@pytest.mark.parametrize("engine", ["auto", "broadcast", "half_gridify", "full_gridify", "local"])
def test_our_engines_refuse_nonnegative(engine):
    with pytest.raises(ValueError, match="nonnegative.*mllib"):
        ALSParams(engine=engine, nonnegative=True).validate()
    ALSParams(engine="mllib", nonnegative=True, reg_exponent=1.0).validate()
    # MLlib cannot honour another regularisation: refused with what to set, never ignored.
    for other in ({"reg_exponent": 0.7}, {"reg_exponent": 1.0, "scale_reg": False}):
        with pytest.raises(ValueError, match="mllib.*scale_reg true, reg_exponent 1"):
            ALSParams(engine="mllib", **other).validate()


def test_half_gridify_routes_only_the_factors_a_block_needs(spark):
    """Even users play items 0-4, odd users items 5-9: user block 0 (even) is sent item
    factors 0-4 only, block 1 items 5-9 (the out-block table of the talk), whatever item
    block they live in."""
    rows = [(u, i, 2.0) for u in range(6) for i in (range(5) if u % 2 == 0 else range(5, 10))]
    conf = spark.createDataFrame(rows, "user_idx int, item_idx int, confidence double")
    _, by_item = rating_blocks(conf, 2, 2, rank=3, seed=0)
    keys = partition_keys(spark, 2)
    sent: dict[int, set] = {0: set(), 1: set()}
    routed = half_gridify.initial_stream(by_item, keys, 3).filter("kind = 0").collect()
    for m in routed:
        ids = np.frombuffer(m["ids"], np.int32)
        assert np.frombuffer(m["factors"], np.float32).size == 3 * ids.size
        sent[keys.index(m["part"])] |= set(ids.tolist())
    assert sent == {0: set(range(5)), 1: set(range(5, 10))}
    assert len(routed) == 4  # each of the 2 item blocks sends to each of the 2 user blocks


@pytest.mark.parametrize("duplicate", [False, True])
def test_csr_is_the_same_whatever_the_arrival_order(duplicate):
    rng = np.random.default_rng(5)
    pairs = rng.choice(40 * 30, 300, replace=False)
    keys, others = pairs // 30, pairs % 30
    conf = rng.gamma(1.0, 3.0, 300).astype(np.float32)
    if duplicate:  # (key 3, other 7) twice, with different confidences
        keys, others = np.append(keys, [3, 3]), np.append(others, [7, 7])
        conf = np.append(conf, np.float32([2.5, 1.5]))
    first = csr(keys, others, conf)
    for seed in range(3):
        p = np.random.default_rng(seed).permutation(keys.size)
        again = csr(keys[p], others[p], conf[p])
        for a, b in zip((first.rows, first.indptr, first.others, first.conf),
                        (again.rows, again.indptr, again.others, again.conf)):
            np.testing.assert_array_equal(a, b)
    row = int(np.searchsorted(first.rows, 3))
    lo, hi = first.indptr[row], first.indptr[row + 1]
    got = list(zip(first.others[lo:hi], first.conf[lo:hi]))
    assert got == sorted(got) and len(got) == (keys == 3).sum()


def test_blocking_refuses_negative_ids(spark):
    conf = spark.createDataFrame([(0, 1, 2.0), (-1, 0, 3.0)],
                                 "user_idx int, item_idx int, confidence double")
    with pytest.raises(Exception, match="non-negative user_idx"):
        rating_blocks(conf, 2, 2, rank=2, seed=0)


@pytest.mark.parametrize("routed", [True, False])
def test_blocks_land_one_per_partition_and_keep_every_rating(spark, routed):
    conf = random_confidence(spark, 120, 80, 1500)
    by_user, by_item = rating_blocks(conf, 4, 3, rank=2, seed=0, routed=routed)
    want = conf.toPandas().sort_values(["user_idx", "item_idx"])
    for blocks, n, key, other in ((by_user, 4, "user_idx", "item_idx"),
                                  (by_item, 3, "item_idx", "user_idx")):
        assert blocks.rdd.glom().map(len).collect() == [1] * n
        got = []
        for record in blocks.collect():
            b = unpack(record)
            assert (len(record["routes"]) > 0) == routed  # out-block tables only if routed
            assert (b.rows % n == record["blk"]).all()
            for u in range(b.rows.size):
                lo, hi = b.indptr[u], b.indptr[u + 1]
                got += [(b.rows[u], o, c) for o, c in zip(b.others[lo:hi], b.conf[lo:hi])]
        got = pd.DataFrame(got, columns=[key, other, "confidence"])
        got = got.sort_values(["user_idx", "item_idx"])
        np.testing.assert_array_equal(got[["user_idx", "item_idx"]].to_numpy(),
                                      want[["user_idx", "item_idx"]].to_numpy())
        np.testing.assert_allclose(got["confidence"], want["confidence"], rtol=1e-6)


@pytest.mark.parametrize("engine,solver", [("broadcast", "cg"), ("half_gridify", "cg"),
                                           ("half_gridify", "exact"), ("full_gridify", "exact")])
def test_fits_drop_superseded_half_steps(spark, engine, solver):
    """Each half-step's local checkpoint is dropped once the next one of its side exists, so
    what a fit leaves cached does not grow with its iterations (it did: 8.4 GiB peak for half
    gridify on the benchmark), and the factors it returns are still readable."""
    conf = small_confidence(spark)
    conf.count()  # its own cache is built before we count ours
    jsc = spark.sparkContext._jsc.sc()

    def cached_after(iters):
        first = jsc.newRddId()
        f = train_als(conf, ALSParams(rank=4, max_iter=iters, engine=engine, solver=solver,
                                      num_user_blocks=2, num_item_blocks=2))
        assert np.isfinite(dense(f.user_factors, 120)).all()
        assert np.abs(dense(f.item_factors, 80)).sum() > 0
        return len([i for i in jsc.getRDDStorageInfo() if i.id() > first])

    assert cached_after(4) == cached_after(1) <= 2


def test_cg_kernel_gives_the_same_bits_in_every_process():
    """The kernel's vectorised sums must not depend on where its arrays lie in memory: the
    same inputs in fresh processes (other heaps, other addresses) give identical factors."""
    import subprocess
    import sys

    script = (
        "import hashlib, numpy as np\n"
        "from recsys_dagster.ml.als.kernels import solve_cg\n"
        "rng = np.random.default_rng(0)\n"
        "keys = np.sort(rng.integers(0, 60, 800))\n"
        "indptr = np.searchsorted(keys, np.arange(61))\n"
        "y = rng.standard_normal((120, 8)).astype(np.float32)\n"
        "pad = np.empty(int(rng.integers(1, 9)), np.float32)  # shifts later allocations\n"
        "out = solve_cg(y, y.T.astype(float) @ y, indptr, rng.integers(0, 120, 800),\n"
        "               (1 + rng.gamma(1, 3, 800)).astype(np.float32), 0.1,\n"
        "               rng.standard_normal((60, 8)).astype(np.float32))\n"
        "print(hashlib.md5(out.tobytes()).hexdigest())\n")
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True).stdout.strip() for _ in range(5)}
    assert len(digests) == 1, digests


def test_the_regularisation_exponent_scales_lambda_by_a_power_of_the_count(spark):
    """lambda_u = lambda * n_u ** nu: nu 1 is MLlib's convention, nu 0 a plain lambda (the
    same factors as scale_reg off, bit for bit), nu 0.5 between; MLlib takes only nu 1."""
    from recsys_dagster.ml.als.kernels import row_reg

    counts = np.array([1, 4, 9])
    np.testing.assert_allclose(row_reg(counts, 0.1, True, 0.5), [0.1, 0.2, 0.3])
    np.testing.assert_allclose(row_reg(counts, 0.1, True), [0.1, 0.4, 0.9])
    np.testing.assert_array_equal(row_reg(counts, 0.1, True, 0.0), row_reg(counts, 0.1, False))

    rng = np.random.default_rng(4)
    rows = sorted({(int(u), int(i), int(p)) for u, i, p in zip(
        rng.integers(0, 60, 700), rng.integers(0, 40, 700), rng.integers(1, 30, 700))})
    conf = confidence_matrix(spark.createDataFrame(rows, "user_idx int, item_idx int, plays long"),
                             ConfidenceParams())

    def fit(**kw):
        f = train_als(conf, ALSParams(rank=4, max_iter=3, reg_param=0.5, seed=1, **kw))
        return {r.idx: tuple(r.features) for r in f.item_factors.collect()}

    plain = fit(scale_reg=False)
    assert fit(reg_exponent=0.0) == plain
    half = fit(reg_exponent=0.5)
    assert half != plain and half != fit()
    with pytest.raises(ValueError, match="reg_exponent"):
        ALSParams(engine="mllib", reg_exponent=0.5).validate()


@pytest.mark.parametrize("solver,blocks", [("cg", 1), ("exact", 1), ("cg", 3)])
def test_the_local_engine_is_the_broadcast_fit_in_the_driver(spark, solver, blocks):
    """Same seeded start, same row solver, Gram matrices summed block by block in the same
    order: the same factors. With one block per side the arithmetic is the same (on one
    machine, the same bits), but the driver and Spark's Python workers may run BLAS on other
    thread counts, whose kernels may round otherwise: within 1e-5 relative, rounding compounded
    over four iterations. With three blocks, within the rounding of summing the blocks' Gram
    partials in another order."""
    conf = small_confidence(spark)
    params = ALSParams(rank=6, max_iter=4, reg_param=0.05, solver=solver, reg_exponent=0.7,
                       num_user_blocks=blocks, num_item_blocks=blocks, engine="broadcast")
    local = train_als(conf, replace(params, engine="local"))
    remote = train_als(conf, params)
    for side, n in (("user_factors", 120), ("item_factors", 80)):
        a, b = (dense(getattr(f, side), n) for f in (local, remote))
        assert np.abs(a).sum() > 0
        if blocks == 1:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert local.timings["iterations"] == 4
    assert (local.engine, remote.engine) == ("local", "broadcast")


def test_the_local_engine_refuses_negative_ids(spark):
    conf = spark.createDataFrame([(0, 1, 2.0), (1, -2, 3.0)],
                                 "user_idx int, item_idx int, confidence double")
    with pytest.raises(ValueError, match="non-negative item_idx"):
        train_als(conf, ALSParams(rank=2, max_iter=1, engine="local"))
