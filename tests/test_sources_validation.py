"""Bad input goes to quarantine with a reason; nothing is dropped; unreadable sources fail."""

import pytest
from pyspark.sql import functions as F

from recsys_dagster.ml.ingest import sources
from recsys_dagster.ml.ingest.validation import validate_plays


def write(tmp_path, name, text, newline="\n"):
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return str(path)


BAD_CSV = """user_id,item_id,plays,ts
alice,song-1,3,2024-01-05T10:00:00
alice,song-2,1,1704448800
bob,song-1,"2",2024-01-06
,song-3,4,2024-01-05
carol,,4,2024-01-05
dave,song-1,many,2024-01-05
erin,song-1,0,2024-01-05
frank,song-1,-3,2024-01-05
gina,song-1,99999999999,2024-01-05
hank,song-1,2.5,2024-01-05
ivan,song-1,2,not-a-date
judy,song-1
kim,song-1,1,2024-01-05,extra
leo,song-9,,2024-01-05
"""


def test_every_bad_row_quarantined_with_reason(spark, tmp_path):
    path = write(tmp_path, "plays.csv", BAD_CSV)
    raw = sources.read_delimited(spark, path, sources.ColumnMapping(ts="ts"))
    good, bad = validate_plays(raw, max_plays=1_000_000)
    good_rows = {(r.user_id, r.item_id): r.plays for r in good.collect()}
    assert good_rows == {("alice", "song-1"): 3, ("alice", "song-2"): 1, ("bob", "song-1"): 2}
    reasons = {(r.user_id, r.reason) for r in bad.collect()}
    expected_prefixes = {
        "": "null or empty user_id", "carol": "null or empty item_id",
        "dave": "non-numeric plays", "erin": "zero or negative plays",
        "frank": "zero or negative plays", "gina": "absurd plays",
        "hank": "non-integer plays", "ivan": "unparseable timestamp",
        "judy": "malformed line: expected 4 fields, got 2",
        "kim": "malformed line: expected 4 fields, got 5", "leo": "missing plays",
    }
    got = {u: why for u, why in reasons}
    assert set(got) == set(expected_prefixes)
    for user, prefix in expected_prefixes.items():
        assert got[user].startswith(prefix), (user, got[user])
    # Accounting: every data line is either accepted or quarantined, none silently dropped.
    assert good.count() + bad.count() == len(BAD_CSV.strip().splitlines()) - 1
    raw_lines = {r.raw_line for r in bad.collect()}
    assert "judy,song-1" in raw_lines


def test_timestamps_parsed_iso_and_epoch(spark, tmp_path):
    path = write(tmp_path, "p.csv", BAD_CSV)
    raw = sources.read_delimited(spark, path, sources.ColumnMapping(ts="ts"))
    good, _ = validate_plays(raw)
    ts = {r.item_id + r.user_id: r.ts.isoformat() for r in good.collect()}
    assert ts["song-2alice"] == "2024-01-05T10:00:00"  # epoch seconds, UTC
    assert ts["song-1bob"] == "2024-01-06T00:00:00"


def test_event_log_aggregated_per_user_item_day(spark, tmp_path):
    text = "who,what,when\n" + "\n".join([
        "u1,a,2024-02-01T08:00:00", "u1,a,2024-02-01T09:00:00", "u1,a,2024-02-02T09:00:00",
        "u2,a,2024-02-01T10:00:00", "u2,b,garbage",
    ]) + "\n"
    path = write(tmp_path, "events.csv", text)
    raw = sources.read_delimited(spark, path, sources.ColumnMapping("who", "what", None, "when"))
    good, bad = validate_plays(raw, has_plays=False)
    rows = sorted((r.user_id, r.item_id, r.plays, r.ts.isoformat()) for r in good.collect())
    assert rows == [("u1", "a", 1, "2024-02-02T09:00:00"), ("u1", "a", 2, "2024-02-01T09:00:00"),
                    ("u2", "a", 1, "2024-02-01T10:00:00")]
    assert [r.reason for r in bad.collect()] == ["unparseable timestamp: garbage"]


def test_crlf_tsv_with_header_like_hetrec(spark, tmp_path):
    path = write(tmp_path, "user_artists.dat",
                 "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n", newline="\r\n")
    good, bad = validate_plays(sources.read_lastfm_user_artists(spark, path))
    assert sorted((r.user_id, r.item_id, r.plays) for r in good.collect()) == [
        ("2", "51", 13883), ("2", "52", 11690)]
    assert bad.count() == 0


def test_parquet_source_with_mapping(spark, tmp_path):
    df = spark.createDataFrame([("u", "i", 5), ("u", None, 1)],
                               "listener string, track string, n long")
    path = str(tmp_path / "plays.parquet")
    df.write.parquet(path)
    mapping = sources.ColumnMapping("listener", "track", "n")
    good, bad = validate_plays(sources.read_parquet(spark, path, mapping))
    assert [(r.user_id, r.item_id, r.plays) for r in good.collect()] == [("u", "i", 5)]
    assert [r.reason for r in bad.collect()] == ["null or empty item_id"]


def test_missing_file_names_the_file(spark, tmp_path):
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(sources.SourceError, match="nope.csv"):
        sources.read_delimited(spark, missing, sources.ColumnMapping())


def test_wrong_schema_names_file_and_expected_columns(spark, tmp_path):
    path = write(tmp_path, "wrong.csv", "user,song,count\na,b,1\n")
    with pytest.raises(sources.SourceError) as err:
        sources.read_delimited(spark, path, sources.ColumnMapping())
    msg = str(err.value)
    assert "wrong.csv" in msg and "user_id" in msg and "item_id" in msg and "plays" in msg
    pq = str(tmp_path / "p.parquet")
    spark.createDataFrame([(1,)], "x int").write.parquet(pq)
    with pytest.raises(sources.SourceError, match=r"p.parquet.*\['user_id', 'item_id', 'plays'\]"):
        sources.read_parquet(spark, pq, sources.ColumnMapping())


def test_headerless_positions(spark, tmp_path):
    path = write(tmp_path, "nohdr.tsv", "a\tx\t3\nb\ty\n")
    raw = sources.read_delimited(spark, path, sources.ColumnMapping("0", "1", "2"), "\t",
                                 header=False)
    good, bad = validate_plays(raw)
    assert [(r.user_id, r.plays) for r in good.collect()] == [("a", 3)]
    assert bad.where(F.col("reason").startswith("malformed")).count() == 1


def test_utf8_bom_and_blank_lines(spark, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffuser_id,item_id,plays\nu,i,2\n\nv,j,1\n".encode("utf-8"))
    good, bad = validate_plays(sources.read_delimited(spark, str(path), sources.ColumnMapping()))
    assert sorted((r.user_id, r.plays) for r in good.collect()) == [("u", 2), ("v", 1)]
    assert [r.reason for r in bad.collect()] == ["blank line"]


def test_ids_with_control_characters_or_too_long_are_quarantined(spark, tmp_path):
    # As a new user tried: an id made of a NUL byte and a 10,000-character id were accepted.
    long_id = "x" * 10_000
    lines = ["user_id,item_id,plays", "alice,song-1,3", "\x00,song-1,2", f"{long_id},song-1,1",
             "bob,song\x07bell,4", "carol,\x7f,1", "dave," + "s" * 512 + ",2",
             "erin," + "s" * 513 + ",2"]
    path = write(tmp_path, "ids.csv", "\n".join(lines) + "\n")
    good, bad = validate_plays(sources.read_delimited(spark, path, sources.ColumnMapping()))
    assert sorted(r.user_id for r in good.collect()) == ["alice", "dave"]  # 512 is allowed
    reasons = sorted(r.reason for r in bad.collect())
    assert reasons == ["control character in item_id", "control character in item_id",
                       "control character in user_id", "item_id longer than 512 characters",
                       "user_id longer than 512 characters"]
    # The maximum is a setting.
    good, bad = validate_plays(sources.read_delimited(spark, path, sources.ColumnMapping()),
                               max_id_length=4)
    assert [r.user_id for r in good.collect()] == []  # "alice" has 5 characters
    # alice, the 10,000-character id and carol; bob, dave and erin fit, their items do not.
    assert bad.where(F.col("reason") == "user_id longer than 4 characters").count() == 3
    with pytest.raises(ValueError, match="max_id_length"):
        validate_plays(sources.read_delimited(spark, path, sources.ColumnMapping()),
                       max_id_length=0)


def test_a_typed_source_is_checked_as_it_is_with_the_same_outcome_as_text(spark):
    """The synthetic source's plays and times stay typed (no text round trip); its rows get the
    same events, quarantine and reasons as the same rows written out as text."""
    import datetime as dt

    from recsys_dagster.ml.ingest.days import day_of_raw

    t = dt.datetime(2024, 1, 5, 10, 0)
    rows = [("alice", "song-1", 3, t), ("bob", "song-2", 1, None), ("", "song-3", 2, t),
            ("carol", "a\tb", 2, t), ("erin", "song-1", 0, t), ("gina", "song-1", 10**7, t),
            ("leo", "song-9", None, t)]
    typed = sources.typed_to_raw(spark.createDataFrame(
        rows, "user_id string, item_id string, plays long, ts timestamp"))
    as_text = typed.select("user_id", "item_id", F.col("plays").cast("string").alias("plays"),
                           F.date_format("ts", "yyyy-MM-dd'T'HH:mm:ss").alias("ts"),
                           "_raw", "_reason")
    assert dict(typed.dtypes)["plays"] == "bigint" and dict(typed.dtypes)["ts"] == "timestamp"
    outcomes = []
    for raw in (typed, as_text):
        good, bad = validate_plays(raw, max_plays=1_000_000)
        outcomes.append((sorted(tuple(r) for r in good.collect()),
                         sorted(tuple(r) for r in bad.collect()),
                         sorted(tuple(r) for r in day_of_raw(raw, "2024-01-31")
                                .select("user_id", "day").collect())))
    assert outcomes[0] == outcomes[1]
    good, bad, days = outcomes[0]
    assert good == [("alice", "song-1", 3, t), ("bob", "song-2", 1, None)]
    reasons = {r[0]: r[5] for r in bad}
    assert reasons == {"": "null or empty user_id", "carol": "control character in item_id",
                       "erin": "zero or negative plays", "leo": "missing plays",
                       "gina": "absurd plays (more than 1000000 in one row)"}
    assert {r[0]: r[3] for r in bad}["erin"] == "2024-01-05T10:00:00"  # the time as text
    assert dict(days)["bob"] == dt.date(2024, 1, 31)  # no time: the delivery day
