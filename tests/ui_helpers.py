"""What the browser and GraphQL tests share: the design's lineage, a GraphQL client, headless
Chromium (Debian's: Playwright's own browser download is not used), reading the UI's
metadata panels. Screenshots go to test-artifacts/."""

import contextlib
import json
import time
import urllib.request

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
    # The artist model: the songs' factors (or the settings of an artist-level ALS), artists
    # from the catalogue, plays as weights.
    ("als_model", "artist_model"), ("interactions", "artist_model"),
    ("item_catalog", "artist_model"), ("item_index", "artist_model"),
    # Similar artists: its vectors; the model's record to publish by; names and listeners.
    ("artist_model", "similar_artists"), ("artist_model", "artist_evaluation"),
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
          "interactions": "features", "confidence_matrix": "training", "als_model": "training",
          "als_tuning": "training", "evaluation_split": "training", "artist_model": "training",
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
