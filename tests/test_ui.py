"""`dagster dev` in a subprocess: the lineage of DESIGN.md, and a run launched as from the UI
(its calendar: the 7 days of the standard run's data).

dagster dev (1.13) can ignore SIGTERM for a long time, so it runs in its own process group and
the whole group is killed for sure (SIGKILL after a grace period).
"""

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import STANDARD_CALENDAR, STANDARD_CONFIG
from spark_cluster import free_port, stop

from recsys_dagster.paths import REPO_ROOT

EXPECTED_EDGES = {
    ("play_events", "user_index"), ("play_events", "item_index"),
    ("play_events", "interactions"), ("user_index", "interactions"),
    ("item_index", "interactions"), ("interactions", "confidence_matrix"),
    ("confidence_matrix", "als_model"), ("als_model", "evaluation_metrics"),
    ("interactions", "evaluation_split"), ("evaluation_split", "als_tuning"),
    ("evaluation_split", "evaluation_metrics"), ("als_tuning", "confidence_matrix"),
    ("als_tuning", "als_model"), ("als_model", "user_recommendations"),
    ("evaluation_metrics", "user_recommendations"), ("als_model", "similar_items"),
    ("evaluation_metrics", "similar_items"), ("item_catalog", "similar_items"),
    # Serving maps dense indexes back to raw ids and leaves out already-played items.
    ("user_index", "user_recommendations"), ("item_index", "user_recommendations"),
    ("interactions", "user_recommendations"), ("item_index", "similar_items"),
    ("item_catalog", "user_recommendations"),  # names for its metadata's sample
    # Similar artists: the songs' factors, artists from the catalogue, plays as weights.
    ("als_model", "similar_artists"), ("evaluation_metrics", "similar_artists"),
    ("item_catalog", "similar_artists"), ("item_index", "similar_artists"),
    ("interactions", "similar_artists"), ("artist_evaluation", "similar_artists"),
    # Their held-out evaluation: the evaluation's fit, its split, the songs' artists.
    ("evaluation_metrics", "artist_evaluation"), ("evaluation_split", "artist_evaluation"),
    ("item_catalog", "artist_evaluation"), ("item_index", "artist_evaluation"),
    # Artist radio: the songs' factors and artists, plays and listeners, the judged settings.
    ("als_model", "artist_radio"), ("evaluation_metrics", "artist_radio"),
    ("artist_evaluation", "artist_radio"), ("interactions", "artist_radio"),
    ("item_index", "artist_radio"), ("item_catalog", "artist_radio"),
}
GROUPS = {"play_events": "ingestion", "play_events_quarantine": "ingestion",
          "item_catalog": "ingestion", "user_index": "features", "item_index": "features",
          "interactions": "features", "confidence_matrix": "features", "als_model": "training",
          "als_tuning": "training", "evaluation_split": "evaluation",
          "evaluation_metrics": "evaluation", "artist_evaluation": "evaluation",
          "user_recommendations": "serving",
          "similar_items": "serving", "similar_artists": "serving", "artist_radio": "serving"}


def gql(port, query, variables=None):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.load(resp)
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    data = tmp_path_factory.mktemp("ui_data")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "RECSYS_DATA_DIR": str(data),
           "RECSYS_SPARK_PROFILE": "test", **STANDARD_CALENDAR,
           "RECSYS_SPARK_CHECKPOINT_DIR": str(data / "_checkpoints")}
    log = open(home / "dagster_dev.log", "w")
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "dagster"), "dev", "-h", "127.0.0.1",
         "-p", str(port)],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 180
        while True:
            try:
                gql(port, "{ version }")
                nodes = gql(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
                if nodes:
                    break
            except Exception:  # not up yet
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"dagster dev did not come up: see {home}/dagster_dev.log")
            time.sleep(2)
        yield port, data
    finally:
        stop([proc], term_grace=10)  # dagster dev may ignore SIGTERM: SIGKILL follows
        log.close()


ARTIFACTS = REPO_ROOT / "test-artifacts"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium_page(height: int):
    """A page of headless Chromium (Debian's), closed afterwards."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=BROWSER_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1800, "height": height})
        finally:
            browser.close()


def test_asset_graph_in_a_real_browser(dagster_dev):
    """Headless Chromium (Debian's) opens the lineage pages; every asset name is on them."""
    port, _ = dagster_dev
    base = f"http://127.0.0.1:{port}"
    by_group = {}
    for asset, group in GROUPS.items():
        by_group.setdefault(group, []).append(asset)
    with chromium_page(1100) as page:
        page.goto(f"{base}/asset-groups")
        page.get_by_role("button", name="Skip").click(timeout=60_000)  # community dialog
        for group in by_group:
            page.get_by_text(group, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "global_lineage.png"))
        for group, assets in by_group.items():
            page.goto(f"{base}/locations/recsys_dagster/asset-groups/{group}")
            for asset in assets:
                page.get_by_text(asset, exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / f"lineage_{group}.png"))
        # Operating it: the schedules and sensors a user turns on, and the day partitions.
        page.goto(f"{base}/automation")
        for name in ("daily_ingest", "nightly_retraining", "retrain_on_new_days",
                     "report_run_failure"):
            page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "automation.png"))
        page.goto(f"{base}/assets/play_events?view=partitions")
        page.get_by_text("2024-03-30").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "play_events_partitions.png"))
    assert (ARTIFACTS / "lineage_serving.png").stat().st_size > 10_000


def test_lineage_matches_the_design(dagster_dev):
    port, _ = dagster_dev
    nodes = gql(port, """{ assetNodes { assetKey { path } groupName description
                           dependencyKeys { path } } }""")["assetNodes"]
    groups = {n["assetKey"]["path"][-1]: n["groupName"] for n in nodes}
    assert groups == GROUPS
    edges = {(d["path"][-1], n["assetKey"]["path"][-1]) for n in nodes
             for d in n["dependencyKeys"]}
    assert edges == EXPECTED_EDGES
    assert all(n["description"] for n in nodes)


LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""


BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}"""

# The standard run's settings; the UI's calendar is the data's 7 days (STANDARD_CALENDAR).
SMALL = STANDARD_CONFIG
BACKFILL_RUNS = """
query($tag: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $tag}]}) {
    ... on Runs { results { runId status } }
  }
}"""


def wait_for(port, query, variables, path, done, timeout=420):
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        status = gql(port, query, variables)
        for key in path:
            status = status[key]
        if done(status):
            break
        time.sleep(3)
    return status


def test_backfill_then_retrain_from_the_ui(dagster_dev):
    """As a user would: backfill every day of play logs (the daemon runs it as one run),
    then launch the retrain job for the newest day; every table is written."""
    port, data = dagster_dev
    ingest = {"ops": {"ingest_play_logs": SMALL["ops"]["ingest_play_logs"]}}
    launched = gql(port, BACKFILL, {"params": {
        "assetSelection": [{"path": [a]} for a in ("play_events", "play_events_quarantine",
                                                   "item_catalog")],
        "allPartitions": True, "runConfigData": ingest}})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    # The daemon turns the backfill into runs (one: the policy is single-run); wait for those
    # to end rather than for the daemon's next look at the backfill (it looks every 30 s).
    runs = wait_for(port, BACKFILL_RUNS, {"tag": launched["backfillId"]},
                    ["runsOrError", "results"],
                    lambda rs: rs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED")
                                          for r in rs))
    assert [r["status"] for r in runs] == ["SUCCESS"], runs
    days = sorted(p.name for p in (data / "play_events").iterdir() if p.name.startswith("20"))
    assert days == [f"2024-03-{d}" for d in range(24, 31)]  # every day of the calendar

    params = {"selector": {"repositoryLocationName": "recsys_dagster",
                           "repositoryName": "__repository__", "jobName": "retrain_and_publish"},
              "runConfigData": {"ops": {k: v for k, v in SMALL["ops"].items()
                                        if k != "ingest_play_logs"}},
              "executionMetadata": {"tags": [{"key": "dagster/partition",
                                              "value": "2024-03-30"}]},
              "mode": "default"}
    launched = gql(port, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    status = wait_for(port, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                      {"id": launched["run"]["runId"]}, ["runOrError", "status"],
                      lambda s: s in ("SUCCESS", "FAILURE", "CANCELED"))
    assert status == "SUCCESS"
    for name in GROUPS:
        if name in ("play_events", "play_events_quarantine", "item_catalog"):
            assert (data / name / "2024-03-30" / "current").is_symlink(), name
        elif name == "interactions":
            assert (data / name / "2024-03-30" / "current").is_symlink(), name
        else:
            assert (data / name / "current").is_symlink(), name


def metadata_text(page, key: str) -> str:
    """The text of one metadata entry on an asset's page: inline, or in the dialog that its
    [Show Markdown] opens (long markdown)."""
    row = page.locator("tr").filter(has=page.get_by_text(key, exact=True)).first
    row.wait_for(timeout=30_000)
    more = row.get_by_text("[Show Markdown]")
    if more.count() == 0:
        return row.inner_text()
    more.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=30_000)
    page.wait_for_timeout(600)  # its fade-in, before a screenshot
    return dialog.inner_text()


def close_dialog(page) -> None:
    page.get_by_role("button", name="Close").click()


def test_product_pages_in_a_real_browser(dagster_dev):
    """After the runs above, the pages a person reads, in Chromium: the evaluation's values and
    its segment plot (an image that decodes), each product's sample by name, and the lineage
    of the as-of day. Screenshots in test-artifacts/."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from recsys_dagster.tables import TableStore

    port, data = dagster_dev
    store = TableStore(str(data))
    if not store.exists("artist_radio"):
        pytest.fail("needs the tables of test_backfill_then_retrain_from_the_ui (run the module)")
    # What the samples must show, read from the tables themselves.
    metrics = store.read_pandas("evaluation_metrics", frame="metrics")
    precision = metrics[(metrics.model == "als") & (metrics.metric == "precision")
                        & (metrics.segment == "all")].value.item()
    names = (store.read_pandas("item_catalog").sort_values("day")
             .drop_duplicates("item_id", keep="last").set_index("item_id").name)
    recs = store.read_pandas("user_recommendations")
    first_user = sorted(recs.user_id)[0]
    first_pick = names[recs[(recs.user_id == first_user) & (recs["rank"] == 1)].item_id.item()]
    artists = (store.read_pandas("artist_radio", frame="artists")
               .sort_values(["listeners", "artist_id"], ascending=[False, True]))
    top = artists.iloc[0]
    sims = store.read_pandas("similar_artists")
    first_similar = sims[(sims.artist_id == top.artist_id) & (sims["rank"] == 1)]
    stations = store.read_pandas("artist_radio", frame="stations")
    opener = stations[(stations.seed_artist_id == top.artist_id) & (stations.position == 1)]

    base = f"http://127.0.0.1:{port}"
    with chromium_page(1400) as page:
        page.goto(f"{base}/assets/evaluation_metrics")
        try:  # the community dialog, when this browser has not dismissed it yet
            page.get_by_role("button", name="Skip").click(timeout=10_000)
        except PlaywrightTimeout:
            pass
        assert str(precision)[:8] in metadata_text(page, "als/precision@10")
        metadata_text(page, "segment_plot")
        plot = page.locator('img[alt="precision per segment"]')
        plot.wait_for(timeout=30_000)
        width, height = plot.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        assert width > 100 and height > 100  # a PNG that decodes, not a broken image
        page.screenshot(path=str(ARTIFACTS / "evaluation_metrics.png"))
        close_dialog(page)

        for asset, wanted in (
                ("user_recommendations", [first_user, first_pick]),
                ("similar_artists", [top.artist_name,
                                     first_similar.similar_artist_name.item()]),
                ("artist_radio", [top.artist_name, opener.name.item()])):
            page.goto(f"{base}/assets/{asset}")
            text = metadata_text(page, "sample")
            for value in wanted:
                assert value in text, (asset, value, text[:500])
            page.screenshot(path=str(ARTIFACTS / f"{asset}.png"))

        # One as-of day: the partition's materialisation, then its lineage.
        page.goto(f"{base}/assets/interactions?view=partitions&partition=2024-03-30")
        page.get_by_text("retrain_and_publish").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "interactions_2024-03-30.png"))
        page.goto(f"{base}/assets/interactions?view=lineage")
        for node in ("play_events", "confidence_matrix", "similar_artists", "artist_radio"):
            page.get_by_text(node, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "interactions_lineage.png"))
