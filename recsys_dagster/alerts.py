"""Alerts a team reads: each is a JSON line in $RECSYS_DATA_DIR/_alerts/alerts.jsonl and, when
RECSYS_ALERT_WEBHOOK is set, a POST of the same JSON to that URL. The JSON carries a `text`
field, so a Slack (or Mattermost, Teams workflow) incoming webhook shows it as a message.

Kinds: `run_failed` (a run failed: its failed steps and message), `gate_blocked` (a run
stopped because a blocking check failed: the publication gates, the quarantine check),
`stale_table` (a served table's freshness policy failed: retrains stopped publishing). No
Dagster import: the sensors (sensors.py) decide what to send.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.request

from . import settings
from .paths import data_dir

ALERT_LOG = os.path.join("_alerts", "alerts.jsonl")
WEBHOOK_TIMEOUT_S = 10


def alert_log_path(base_dir: str | None = None) -> str:
    return os.path.join(base_dir or data_dir(), ALERT_LOG)


def send(kind: str, text: str, details: dict, base_dir: str | None = None) -> dict:
    """Record an alert and post it to the webhook; returns the record (with `webhook`: the
    HTTP status, or the error that kept it from being delivered). Never raises for a webhook
    that is down: the line in the file is the alert of record."""
    record = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "kind": kind,
              "text": f"recsys-dagster: {text}", **details}
    url = settings.read(settings.ALERT_WEBHOOK)
    if url:
        record["webhook"] = post_json(url, {k: v for k, v in record.items() if k != "webhook"})
    path = alert_log_path(base_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
    return record


def post_json(url: str, body: dict) -> str:
    data = json.dumps(body, default=str).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            return f"HTTP {response.status}"
    except Exception as exc:  # noqa: BLE001 - any failure to deliver is reported, not raised
        return f"not delivered: {type(exc).__name__}: {exc}"
