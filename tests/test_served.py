"""The products from the command line, read from the served tables without Spark: a listener's
recommendations and the plays behind each (against a brute-force computation), a new listener
folded in from a file of plays, similar artists and songs, and clear messages for names and
tables that are not there."""

import contextlib
import gc
import io
import os
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import copy_warehouse

from recsys_dagster import cli
from recsys_dagster.ml.als.kernels import solve_cg, solve_exact
from recsys_dagster.ml.serving.explain import contributions, top_reasons
from recsys_dagster.served.model import ServedModel
from recsys_dagster.served.summary import summary


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def small_model(seed=0, n_items=40, rank=5, n_played=7):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n_items, rank)).astype(np.float32)
    played = np.sort(rng.choice(n_items, n_played, replace=False))
    conf = (1 + rng.gamma(1.0, 3.0, n_played)).astype(np.float32)
    return y, y.astype(np.float64).T @ y, played, conf


@pytest.mark.parametrize("scale_reg,exponent", [(True, 0.7), (True, 1.0), (False, 1.0)])
def test_the_plays_contributions_sum_to_the_exact_solve_score(scale_reg, exponent):
    """Hu, Koren & Volinsky (2008), section 5: score = sum over plays of y_iᵀ W_u y_j c_uj."""
    y, yty, played, conf = small_model()
    reg = 0.8
    every = np.arange(y.shape[0])
    share = contributions(y, yty, played, conf, every, reg, scale_reg, exponent)
    x = solve_exact(y, yty, np.array([0, played.size]), played, conf, reg, scale_reg, exponent)
    exact_scores = y.astype(np.float64) @ x[0].astype(np.float64)
    np.testing.assert_allclose(share.sum(axis=1), exact_scores, atol=1e-4)
    # Brute force: W_u from its definition, one term at a time.
    lam = reg * (played.size ** exponent if scale_reg else 1.0)
    y64, c64 = y.astype(np.float64), conf.astype(np.float64)
    a = (y64.T @ y64 + sum((c - 1) * np.outer(y64[j], y64[j]) for j, c in zip(played, c64))
         + lam * np.eye(5))
    w = np.linalg.inv(a)
    brute = np.array([[y64[i] @ w @ y64[j] * c for j, c in zip(played, c64)] for i in every])
    np.testing.assert_allclose(share, brute, rtol=1e-9, atol=1e-12)  # float64 both ways
    reasons = top_reasons(share, 3)
    assert reasons.shape == (y.shape[0], 3)
    assert all((share[r, reasons[r]] == np.sort(share[r])[::-1][:3]).all() for r in every)


def test_a_cg_vector_is_near_the_exact_solve():
    """The served vectors of the cg solver are a few steps from the exact solve: the
    explanation sums to the exact score, which the served score approaches."""
    y, yty, played, conf = small_model(seed=1, rank=8)
    indptr = np.array([0, played.size])
    exact = solve_exact(y, yty, indptr, played, conf, 0.5, True, 0.7)
    start = np.zeros((1, 8), dtype=np.float32)
    far = solve_cg(y, yty, indptr, played, conf, 0.5, start, steps=1, scale_reg=True,
                   reg_exponent=0.7)
    near = solve_cg(y, yty, indptr, played, conf, 0.5, start, steps=8, scale_reg=True,
                    reg_exponent=0.7)
    assert np.abs(near - exact).max() < np.abs(far - exact).max()
    np.testing.assert_allclose(near, exact, atol=1e-3)


def test_recommend_explain_names_the_listeners_own_plays(standard_run):
    store = standard_run.store
    recs = store.read_pandas("user_recommendations")
    user = sorted(recs.user_id)[0]
    code, out, err = run_cli("recommend", "--user", user, "--n", "5", "--explain",
                             "--data-dir", store.base_dir)
    assert code == 0, err
    model = ServedModel.load(store)
    idx = int(store.read_pandas("user_index").set_index("id").idx[user])
    played, _ = model.plays_of(idx)
    mine = {model.label(i) for i in model.item_ids.reindex(played)}
    lines = out.splitlines()
    listed = [line for line in lines if line.strip()[:3].strip(". ").isdigit()]
    because = [line for line in lines if "because you played:" in line]
    assert len(listed) == len(because) == 5
    for line in because:
        names = [part.rsplit(" (", 1)[0] for part in
                 line.split("because you played: ")[1].split("), ")]
        assert names and set(names) <= mine, (names, mine)
    # The served list, best first, never a played song.
    top = recs[recs.user_id == user].sort_values("rank").head(5)
    assert [model.label(i) for i in top.item_id] == [
        line.split(". ", 1)[1].rsplit(" (", 1)[0] for line in listed]
    assert not {model.label(i) for i in top.item_id} & mine


def test_recommend_for_a_new_listener_from_a_file_of_plays(standard_run, tmp_path):
    store = standard_run.store
    model = ServedModel.load(store)
    known = model.item_ids.iloc[:3].tolist()
    plays = tmp_path / "plays.csv"
    plays.write_text("item_id,plays\n" + "".join(f"{i},{n}\n" for i, n in zip(known, (9, 3, 1)))
                     + "no-such-song,2\n")
    code, out, err = run_cli("recommend", "--plays", str(plays), "--n", "8",
                             "--data-dir", store.base_dir)
    assert code == 0, err
    assert "no-such-song" in out  # reported as unknown, not silently dropped
    listed = [line.split(". ", 1)[1].rsplit(" (", 1)[0] for line in out.splitlines()
              if line.strip()[:3].strip(". ").isdigit()]
    assert len(listed) == 8 and not {model.label(i) for i in known} & set(listed)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,when\nx,y\n")
    code, _, err = run_cli("recommend", "--plays", str(bad), "--data-dir", store.base_dir)
    assert code == 2 and "item_id column" in err


def test_similar_artists_and_songs_by_name_with_the_closest_names_otherwise(standard_run):
    store = standard_run.store
    sims = store.read_pandas("similar_artists")
    artist = sims.artist_name.iloc[0]
    want = sims[sims.artist_name == artist].sort_values("rank").similar_artist_name.head(3)
    code, out, _ = run_cli("similar", "--artist", artist.lower(), "--n", "3",
                           "--data-dir", store.base_dir)
    assert code == 0 and [line.split(". ", 1)[1].rsplit(" (", 1)[0]
                          for line in out.splitlines()[1:]] == want.tolist()
    songs = store.read_pandas("similar_items")
    song = songs.name.iloc[0]
    code, out, _ = run_cli("similar", "--song", song, "--n", "2", "--data-dir", store.base_dir)
    assert code == 0 and out.startswith(f"songs similar to {song}") and song not in \
        out.splitlines()[1]
    code, _, err = run_cli("similar", "--artist", artist[:-1] + "x", "--data-dir",
                           store.base_dir)
    assert code == 2 and "closest:" in err and artist[:-2] in err
    code, _, err = run_cli("recommend", "--user", "nobody", "--data-dir", store.base_dir)
    assert code == 2 and "closest ids" in err


def test_a_missing_served_table_names_what_makes_it(tmp_path):
    for argv in (["recommend", "--user", "u"], ["similar", "--artist", "a"],
                 ["similar", "--song", "s"], ["radio", "--artist", "a"]):
        code, _, err = run_cli(*argv, "--data-dir", str(tmp_path))
        assert code == 2 and "run the pipeline first" in err, (argv, err)


def test_the_run_summary_shows_the_products_and_holds_little_of_the_play_log(standard_run,
                                                                             tmp_path):
    """`cli run`'s summary: the first listeners' lists, the similar artists of the most played
    artists, the most listened artist's station, each as computed here from whole tables. Its
    memory does not grow with the play log: with every day's plays stored 20 times over, it
    prints the same and its peak (tracemalloc's) stays under a tenth of the log in pandas."""
    store = standard_run.store
    recs = store.read_pandas("user_recommendations")
    cat = (store.read_pandas("item_catalog").sort_values("day")
           .drop_duplicates("item_id", keep="last").set_index("item_id"))
    users = sorted(recs.user_id.unique())[:3]
    want_users = [f"recommendations for 3 of {recs.user_id.nunique()} users:"] + [
        f"  {u}: " + ", ".join(f"{cat.name[r.item_id]} ({r.score:.2f})" for r in
                               recs[recs.user_id == u].sort_values("rank").head(5).itertuples())
        for u in users]
    plays = store.read_pandas("play_events")
    by_artist = (plays.groupby("item_id").plays.sum().rename("plays").to_frame()
                 .join(cat.artist_id).groupby("artist_id").plays.sum())
    sims = store.read_pandas("similar_artists")
    listed = by_artist[by_artist.index.isin(sims.artist_id)].sort_values(ascending=False)
    assert listed.iloc[2] > listed.iloc[3]  # the top three are not a tie
    want_artists = [sims[sims.artist_id == a].artist_name.iloc[0] for a in listed.index[:3]]
    listeners = store.read_pandas("artist_radio", frame="artists").set_index("artist_id")
    seed = listeners.artist_name[listeners.listeners.idxmax()]

    text, peak = summary_and_peak(store)
    lines = text.splitlines()
    start = lines.index(want_users[0])
    assert lines[start:start + 4] == want_users
    head = next(i for i, x in enumerate(lines) if x.startswith("similar artists of the 3 most"))
    assert [x.split(": ", 1)[0].strip() for x in lines[head + 1:head + 4]] == want_artists
    assert any(x.startswith(f"radio station of {seed}, the most listened artist, first 10 of")
               for x in lines), text

    grown = copy_warehouse(store, tmp_path / "data")
    for day in grown.partitions("play_events"):  # 19 more copies of each day's rows
        path = grown.current_path("play_events", day)
        rows = pq.read_table(path)
        pq.write_table(pa.concat_tables([rows] * 19), os.path.join(path, "copies.parquet"))
    whole_log = int(grown.read_pandas("play_events").memory_usage(deep=True).sum())
    assert whole_log > 19 * plays.memory_usage(deep=True).sum()
    del plays, recs, sims, cat
    gc.collect()
    grown_text, grown_peak = summary_and_peak(grown)
    assert grown_text.replace(grown.base_dir, store.base_dir) == text
    assert grown_peak < whole_log / 10 and grown_peak < 2 * peak, (peak, grown_peak, whole_log)


def summary_and_peak(store) -> tuple[str, int]:
    """cli run's summary of a warehouse, and the most memory Python held while making it."""
    tracemalloc.start()
    try:
        return summary(store, show_users=3), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
