import pytest

from recsys_dagster.spark_session import resolve_settings


def test_profile_defaults_and_env_overrides():
    local = resolve_settings(profile="local", env={})
    assert local.master == "local[*,4]" and local.remote is None
    assert local.conf["spark.serializer"] == "org.apache.spark.serializer.KryoSerializer"
    assert local.checkpoint_dir
    env = {"RECSYS_SPARK_MASTER": "spark://127.0.0.1:7077",
           "RECSYS_SPARK_CHECKPOINT_DIR": "/tmp/ck"}
    cluster = resolve_settings(profile="cluster", env=env)
    assert cluster.master == "spark://127.0.0.1:7077" and cluster.checkpoint_dir == "/tmp/ck"
    explicit = resolve_settings(profile="local", master="local[1]",
                                overrides={"spark.sql.shuffle.partitions": 3}, env=env)
    assert explicit.master == "local[1]"
    assert explicit.conf["spark.sql.shuffle.partitions"] == "3"


def test_connect_url_replaces_master():
    s = resolve_settings(profile="local", env={"RECSYS_SPARK_REMOTE": "sc://127.0.0.1:15002"})
    assert s.is_connect and s.master is None and s.remote == "sc://127.0.0.1:15002"


def test_bad_settings_fail_clearly():
    with pytest.raises(ValueError, match="unknown Spark profile 'nope'"):
        resolve_settings(profile="nope", env={})
    with pytest.raises(ValueError, match="no Spark master"):
        resolve_settings(profile="cluster", env={})
    with pytest.raises(ValueError, match="sc://"):
        resolve_settings(profile="local", remote="http://x:1", env={})


def test_session_has_test_settings_and_checkpoint_dir(spark):
    conf = spark.sparkContext.getConf()
    assert spark.sparkContext.master == "local[2,4]"
    assert conf.get("spark.serializer") == "org.apache.spark.serializer.KryoSerializer"
    assert spark.conf.get("spark.sql.shuffle.partitions") == "2"
    assert conf.get("spark.ui.enabled") == "false"
    # Without a checkpoint dir, ALS silently ignores checkpointInterval.
    assert spark.sparkContext.getCheckpointDir()


def test_the_small_data_profile_compiles_with_c1_and_collects_for_throughput():
    """`make demo` and `make lastfm` run with the small profile: its JVM options reach the
    driver (spark.driver.extraJavaOptions, read when PySpark launches the JVM) and are options
    this Java accepts."""
    import shutil
    import subprocess

    small = resolve_settings(profile="small", env={})
    options = small.conf["spark.driver.extraJavaOptions"].split()
    assert {"-XX:TieredStopAtLevel=1", "-XX:+UseParallelGC"} <= set(options)
    assert small.conf["spark.sql.shuffle.partitions"] == "4"
    assert small.master == resolve_settings(profile="local", env={}).master
    java = shutil.which("java")
    done = subprocess.run([java, *options, "-version"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_cli_starts_the_session_early_unless_the_run_config_sets_spark(spark, monkeypatch):
    """`run` and `backfill` start the session in a thread while Dagster loads: the same
    session the run's resource then joins. A run config that configures the Spark resource
    gets no warm-up: its settings, not the environment's, must make the session."""
    from types import SimpleNamespace

    from recsys_dagster import cli, spark_session

    threads = []

    def thread(target, name, daemon):  # started at once, in this thread
        threads.append(name)
        return SimpleNamespace(start=target)

    monkeypatch.setattr(cli.threading, "Thread", thread)
    built = len(spark_session._SESSIONS)
    cli._warm_spark({"resources": {"spark": {"config": {"profile": "local"}}}})
    assert threads == [] and len(spark_session._SESSIONS) == built
    cli._warm_spark({"ops": {}})
    assert threads == ["spark-warm-up"]
    assert spark_session._SESSIONS[built:] == [spark]  # built once: this session, joined
