"""Every line accounted for: random malformed input (Hypothesis) and a 1 M-line file."""

import random

from helpers import compiled
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from recsys_dagster.ml.ingest import sources
from recsys_dagster.ml.ingest.validation import validate_plays

HEADER = "user_id,item_id,plays,ts"
good_line = st.builds(lambda u, i, p, d: f"u{u},s{i},{p},2024-01-{d:02d}T10:00:00",
                      st.integers(0, 50), st.integers(0, 50), st.integers(1, 500),
                      st.integers(1, 28))
junk_line = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                           blacklist_characters="\r\n"), max_size=40)
field = st.one_of(st.just(""), st.just("-3"), st.just("0"), st.just("1e12"), st.just("2.5"),
                  st.just("NaN"), st.just("abc"), st.just("12"), st.text(max_size=6).filter(
                      lambda s: "," not in s and "\n" not in s and "\r" not in s))
odd_line = st.builds(lambda a, b, c, d: ",".join([a, b, c, d]), field, field, field, field)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(good_line, junk_line, odd_line), min_size=1, max_size=40))
def test_random_lines_are_accepted_or_quarantined(spark, tmp_path, lines):
    lines = [ln for ln in lines if ln != HEADER]  # a repeated header is a header, not data
    path = tmp_path / "plays.csv"
    path.write_text(HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    raw = sources.read_delimited(spark, str(path), sources.ColumnMapping(ts="ts"))
    good, bad = validate_plays(raw)
    n_good, n_bad = good.count(), bad.count()
    assert n_good + n_bad == len(lines)
    assert bad.where(F.col("reason").isNull()).count() == 0
    assert good.where((F.col("plays") < 1) | F.col("user_id").isNull()
                      | (F.col("item_id") == "")).count() == 0


def test_million_line_file_with_one_percent_garbage(spark, tmp_path):
    """The volume's own case: its queries compiled, which costs less than interpreting them
    on this many rows (docs/testing.md)."""
    rng = random.Random(7)
    path = tmp_path / "big.csv"
    n, garbage = 1_000_000, 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(HEADER + "\n")
        for i in range(n):
            if rng.random() < 0.01:
                garbage += 1
                fh.write(rng.choice(["", "u1,s2", "u1,s2,zero,2024-01-01", ",s9,3,2024-01-01",
                                     "u3,s4,-1,2024-01-01", "u5,s6,7,yesterday",
                                     "u7,s8,9,2024-01-01,extra"]) + "\n")
            else:
                fh.write(f"u{i % 20000},s{(i * 7) % 5000},{1 + i % 9},"
                         f"2024-02-{1 + i % 28:02d}T{i % 24:02d}:00:00\n")
    with compiled(spark):
        raw = sources.read_delimited(spark, str(path), sources.ColumnMapping(ts="ts"))
        good, bad = validate_plays(raw)
        n_bad = bad.count()
        assert good.count() + n_bad == n
        assert n_bad == garbage and 9000 < garbage < 11000
        assert bad.where(F.col("reason").isNull()).count() == 0
    assert spark.conf.get("spark.sql.codegen.wholeStage") == "false"  # the profile's again
