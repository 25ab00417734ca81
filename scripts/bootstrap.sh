#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine: Java for Spark (17+, a JDK,
# whose javac builds the project's jar), then a virtualenv with the pinned Python packages.
# Idempotent; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

java_major() {
  java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print v[1]; exit}'
}

if ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
  echo "[bootstrap] Java 17+ not found; installing a headless JDK with apt-get" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "[bootstrap] need root (or sudo) to install Java: apt-get install openjdk-17-jdk-headless" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
fi

# apt_install PACKAGE WHY HINT: installs a Debian package as root; otherwise warns with HINT.
apt_install() {
  if [ "$(id -u)" -eq 0 ]; then
    echo "[bootstrap] installing Debian's $1 $2" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
  else
    echo "[bootstrap] warning: $3" >&2
  fi
}

# `make serve` runs a PostgreSQL server of its own (and the suite's deployment test a fresh
# one); Debian puts the server programs in /usr/lib/postgresql/<version>/bin.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  apt_install postgresql "for the deployment" \
    "no PostgreSQL server (apt-get install postgresql); make serve needs it or DAGSTER_PG_HOST"
fi

# The UI test drives Debian's Chromium (Playwright's own browser download is not used).
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium "for the browser test" \
    "/usr/bin/chromium missing (apt-get install chromium); the browser test will fail"
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[dev]"
# The project's jar for a local Spark driver (recsys_dagster/spark_jar.py; javac, a second),
# then the driver's class-data sharing archive (recsys_dagster/spark_classes.py): a JVM runs a
# query of each kind the pipeline runs, under a minute. Spark runs as before without either.
if ! "$VENV/bin/python" -m recsys_dagster.spark_classes build; then
  echo "[bootstrap] warning: no jar or class archive for the Spark driver; Spark runs without" >&2
fi
touch "$VENV/.installed"
echo "[bootstrap] ready: $VENV ($("$VENV/bin/python" --version), java $(java_major))" >&2
