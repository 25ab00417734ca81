"""Every environment variable is read in settings.py, validated there, and documented once."""

import re

import pytest

from recsys_dagster import settings
from recsys_dagster.paths import REPO_ROOT


def test_the_docs_table_is_the_settings_module():
    text = (REPO_ROOT / "docs" / "operations.md").read_text()
    assert settings.markdown_table() in text


def test_no_module_reads_the_environment_but_settings():
    """os.environ / getenv appear only in settings.py (and where a process is given one)."""
    allowed = {"settings.py", "cli.py", "spark_session.py", "serve.py"}
    for path in (REPO_ROOT / "recsys_dagster").rglob("*.py"):
        if path.name in allowed:
            continue
        text = path.read_text()
        assert not re.search(r"os\.environ\.get|os\.getenv|environ\[", text), path


@pytest.mark.parametrize("name,value,message", [
    ("RECSYS_PORT", "http", "must be a TCP port"),
    ("RECSYS_CALENDAR_START", "2024-13-01", "must be an ISO date"),
    ("RECSYS_CALENDAR_END", "tomorrow", "must be an ISO date"),
    ("RECSYS_TRAINING_WINDOW_DAYS", "0", "must be a positive whole number"),
    ("RECSYS_INGEST_CRON", "daily", "must be a cron expression"),
    ("RECSYS_SPARK_REMOTE", "http://x:15002", "must be a Spark Connect URL"),
    ("RECSYS_ALERT_WEBHOOK", "slack", "must be an http:// or https:// URL"),
    ("RECSYS_PROGRESS_SECONDS", "-1", "must be a positive number"),
])
def test_a_bad_value_names_the_variable_and_what_it_must_be(name, value, message):
    with pytest.raises(settings.SettingError) as err:
        settings.BY_NAME[name].read({name: value})
    assert str(err.value).startswith(f"${name} {message}") and repr(value) in str(err.value)


def test_defaults_and_values():
    assert settings.read(settings.CALENDAR_END, {}) == "2024-03-31"
    assert settings.read(settings.CALENDAR_END, {"RECSYS_CALENDAR_END": "open"}) == "open"
    assert settings.read(settings.TRAINING_WINDOW_DAYS, {}) is None  # all history
    assert settings.read(settings.TRAINING_WINDOW_DAYS,
                         {"RECSYS_TRAINING_WINDOW_DAYS": "90"}) == 90
    assert settings.read(settings.ALERT_WEBHOOK, {}) is None
    assert settings.read(settings.PORT, {"RECSYS_PORT": " 8080 "}) == 8080
    settings.validate_all({})
