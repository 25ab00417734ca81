"""Every environment variable the project reads, in one place: read, validated, documented.

A setting is read when it is asked for (`read(SETTING)`), so a test or a process that changes
the environment sees the change; a bad value raises SettingError naming the variable, what it
must be, and what it got. `markdown_table()` renders the table in docs/operations.md (a test
keeps the two equal). No Dagster import.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SettingError(ValueError):
    """An environment variable holds a value the project cannot use."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None  # as it would be written in the environment; None: unset
    parse: Callable[[str], Any]
    doc: str
    group: str
    shown_default: str | None = None  # for the docs, when the default is computed

    def read(self, env: Mapping[str, str] | None = None) -> Any:
        env = os.environ if env is None else env
        raw = env.get(self.name)
        if raw is None or raw.strip() == "":
            return None if self.default is None else self.parse(self.default)
        try:
            return self.parse(raw.strip())
        except (ValueError, TypeError) as exc:
            raise SettingError(f"${self.name} {exc}; got {raw!r}") from None


def read(setting: Setting, env: Mapping[str, str] | None = None) -> Any:
    return setting.read(env)


# ---- parsers: each raises ValueError("must be ...") -------------------------------------

def _text(value: str) -> str:
    return value


def _path(value: str) -> str:
    return os.path.abspath(os.path.expanduser(value))


def _iso_day(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise ValueError("must be an ISO date (YYYY-MM-DD)") from None


def _calendar_end(value: str) -> str:
    return value if value == "open" else _iso_day(value)


def _window(value: str) -> int | None:
    if value.lower() == "all":
        return None
    return _positive_int(value)


def _positive_int(value: str) -> int:
    if not re.fullmatch(r"\d+", value) or int(value) < 1:
        raise ValueError("must be a positive whole number")
    return int(value)


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a positive number") from None
    if not number > 0:
        raise ValueError("must be a positive number")
    return number


def _port(value: str) -> int:
    if not re.fullmatch(r"\d+", value) or not 1 <= int(value) <= 65535:
        raise ValueError("must be a TCP port (1-65535)")
    return int(value)


def _cron(value: str) -> str:
    if len(value.split()) != 5:
        raise ValueError("must be a cron expression of five fields (minute hour day month "
                         "weekday)")
    return value


OFF = "off"


def _path_or_off(value: str) -> str:
    return OFF if value.lower() == OFF else _path(value)


def _spark_remote(value: str) -> str:
    if not value.startswith("sc://"):
        raise ValueError("must be a Spark Connect URL (sc://host:15002)")
    return value


def _url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http:// or https:// URL")
    return value


AUTOMATION_ALL = "all"


def _names(value: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in value.split(",") if n.strip())
    if not all(re.fullmatch(r"[A-Za-z0-9_]+", n) for n in names):
        raise ValueError("must be 'all' or schedule and sensor names separated by commas")
    return names


# ---- the settings ---------------------------------------------------------------------

DATA_DIR = Setting(
    "RECSYS_DATA_DIR", "data", _path, "Base directory of every output table (the warehouse).",
    "data", "`./data`")
CALENDAR_START = Setting(
    "RECSYS_CALENDAR_START", "2024-01-01", _iso_day,
    "First day of the play-log calendar (the synthetic data's first day).", "calendar")
CALENDAR_END = Setting(
    "RECSYS_CALENDAR_END", "2024-03-31", _calendar_end,
    "Day after the calendar's last one; `open` = up to yesterday (production).", "calendar")
TRAINING_WINDOW_DAYS = Setting(
    "RECSYS_TRAINING_WINDOW_DAYS", "all", _window,
    "Days of history a model is trained on; `all` = every day of the calendar.", "calendar")
SPARK_PROFILE = Setting(
    "RECSYS_SPARK_PROFILE", "local", _text,
    "Spark profile: a file of resources/spark/ (`local`, `small`: up to about a million play "
    "rows, what `make demo` uses; `test`, `cluster`, `connect`).", "spark")
SPARK_MASTER = Setting(
    "RECSYS_SPARK_MASTER", None, _text,
    "Spark master URL (`spark://host:7077`, `yarn`, `k8s://...`); overrides the profile's.",
    "spark")
SPARK_REMOTE = Setting(
    "RECSYS_SPARK_REMOTE", None, _spark_remote,
    "Spark Connect URL (`sc://host:15002`); replaces the master.", "spark")
SPARK_CHECKPOINT_DIR = Setting(
    "RECSYS_SPARK_CHECKPOINT_DIR", None, _path,
    "ALS checkpoints, on storage every executor reaches.", "spark",
    "`$RECSYS_DATA_DIR/_spark_checkpoints`")
SPARK_CLASS_ARCHIVE = Setting(
    "RECSYS_SPARK_CLASS_ARCHIVE", None, _path_or_off,
    "The local Spark driver's class-data sharing archive (`make setup` builds it; "
    "recsys_dagster/spark_classes.py); `off`: none.", "spark",
    "`.venv/share/recsys-dagster/spark-driver.jsa`")
SPARK_JAR = Setting(
    "RECSYS_SPARK_JAR", None, _path_or_off,
    "The project's jar for a local Spark driver: a local file system that sets permissions "
    "without a `chmod` process per file (`make setup` builds it; recsys_dagster/spark_jar.py); "
    "`off`: none.", "spark", "`.venv/share/recsys-dagster/recsys-spark.jar`")
RUN_CONFIG = Setting(
    "RECSYS_RUN_CONFIG", None, _path,
    "A run config YAML (as resources/config/*.yaml) for the runs the schedule and sensors "
    "ask for: the ingest takes its ingest section, the retrain the rest.", "automation",
    "none: every setting's default")
PROGRESS_SECONDS = Setting(
    "RECSYS_PROGRESS_SECONDS", "30", _positive_float,
    "A long step logs its progress this often.", "runs")
INGEST_CRON = Setting(
    "RECSYS_INGEST_CRON", "30 0 * * *", _cron,
    "When `daily_ingest` ingests yesterday's plays (UTC).", "automation")
RETRAIN_AFTER_DAYS = Setting(
    "RECSYS_RETRAIN_AFTER_DAYS", "1", _positive_int,
    "`retrain_after_ingest` retrains once the newest ingested day is this many days after "
    "the last retrain's as-of day.", "automation")
AUTOMATION = Setting(
    "RECSYS_AUTOMATION", "", _names,
    "Schedules and sensors that start running when the code location loads: `all`, or "
    "names separated by commas; the others start stopped (turned on in the UI).",
    "automation", "none")
SERVED_MAX_AGE_MINUTES = Setting(
    "RECSYS_SERVED_MAX_AGE_MINUTES", str(36 * 60), _positive_int,
    "The served tables' freshness policy fails once their newest version is older than this "
    "(at least 1).", "automation")
ALERT_WEBHOOK = Setting(
    "RECSYS_ALERT_WEBHOOK", None, _url,
    "Failed runs, blocked gates and stale served tables are posted here as JSON "
    "(Slack-compatible: a `text` field), besides `$RECSYS_DATA_DIR/_alerts/alerts.jsonl`.",
    "automation")
PORT = Setting(
    "RECSYS_PORT", "3000", _port, "`make serve` and `make ui`: the UI's port on 127.0.0.1.",
    "deployment")
CODE_SERVER_PORT = Setting(
    "RECSYS_CODE_SERVER_PORT", "4000", _port,
    "`make serve`: the gRPC code server's port on 127.0.0.1.", "deployment")
DEPLOY_DIR = Setting(
    "RECSYS_DEPLOY_DIR", ".deploy", _path,
    "`make serve`: the deployment's folder (instance, logs, process ids, its PostgreSQL data "
    "and, unless RECSYS_DATA_DIR says otherwise, its warehouse).", "deployment", "`./.deploy`")
DAGSTER_YAML = Setting(
    "RECSYS_DAGSTER_YAML", None, _path,
    "`make serve`: the instance file copied into the deployment's Dagster home at each start.",
    "deployment", "`deploy/dagster.yaml`")
PG_HOST = Setting(
    "DAGSTER_PG_HOST", None, _text,
    "PostgreSQL of the deployment's instance. Unset: `make serve` runs a server of its own in "
    "`$RECSYS_DEPLOY_DIR/postgres`; set: that server is used and none is started.",
    "deployment")
PG_PORT = Setting(
    "DAGSTER_PG_PORT", "5433", _port, "PostgreSQL port (the deployment's own server listens on "
    "127.0.0.1 there).", "deployment")
PG_USER = Setting("DAGSTER_PG_USER", "recsys", _text, "PostgreSQL user.", "deployment")
PG_PASSWORD = Setting(
    "DAGSTER_PG_PASSWORD", None, _text,
    "PostgreSQL password; for the deployment's own server, generated on first start into "
    "`$RECSYS_DEPLOY_DIR/postgres.password`.", "deployment")
PG_DB = Setting("DAGSTER_PG_DB", "dagster", _text, "PostgreSQL database.", "deployment")

ALL = [DATA_DIR, CALENDAR_START, CALENDAR_END, TRAINING_WINDOW_DAYS, SPARK_PROFILE, SPARK_MASTER,
       SPARK_REMOTE, SPARK_CHECKPOINT_DIR, SPARK_CLASS_ARCHIVE, SPARK_JAR, PROGRESS_SECONDS,
       RUN_CONFIG, INGEST_CRON, RETRAIN_AFTER_DAYS, AUTOMATION, SERVED_MAX_AGE_MINUTES,
       ALERT_WEBHOOK, PORT, CODE_SERVER_PORT, DEPLOY_DIR, DAGSTER_YAML, PG_HOST, PG_PORT, PG_USER,
       PG_PASSWORD, PG_DB]
BY_NAME = {s.name: s for s in ALL}


def automation_on(name: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether RECSYS_AUTOMATION starts this schedule or sensor running."""
    names = read(AUTOMATION, env)
    return AUTOMATION_ALL in names or name in names


def validate_all(env: Mapping[str, str] | None = None) -> None:
    """Read every setting once: the first bad value raises (a process checks at start)."""
    for setting in ALL:
        setting.read(env)


def markdown_table() -> str:
    """The settings as the markdown table of docs/operations.md."""
    lines = ["| variable | default | what it sets |", "|---|---|---|"]
    for s in ALL:
        default = s.shown_default or (f"`{s.default}`" if s.default else "unset")
        lines.append(f"| `{s.name}` | {default} | {s.doc} |")
    return "\n".join(lines)
