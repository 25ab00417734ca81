"""Dropping our engines' local checkpoints as soon as a fit no longer needs them (PySpark)."""

from __future__ import annotations

from py4j.protocol import Py4JError
from pyspark.sql import DataFrame


def release(df: DataFrame) -> bool:
    """Drop the cached blocks of a DataFrame made by localCheckpoint(), now. Spark's cleaner
    drops them only once the JVM has garbage-collected the DataFrame: measured, half
    gridify's superseded half-steps then pushed a fit's peak memory past its budget. Only for
    DataFrames that nothing will read again. Returns whether there was something to drop: not
    for other DataFrames, and not on Spark Connect (no JVM handle; the server's cleaner does
    it)."""
    try:
        plan = df._jdf.queryExecution().analyzed()
    except AttributeError:
        return False
    if plan.nodeName() != "LogicalRDD":
        return False
    rdd = plan.rdd()
    _quiet(df.sparkSession.sparkContext._jvm, rdd.getClass().getName())
    rdd.unpersist(True)  # blocking: gone when this returns
    return True


def drop(df: DataFrame) -> None:
    """Drop a DataFrame nothing will read again: a local checkpoint at once (release), a
    persisted one by unpersisting it."""
    if not release(df):
        df.unpersist()


def _quiet(jvm, logger: str) -> None:
    """Spark warns at every unpersist of a locally checkpointed RDD that it cannot be
    recomputed (20 lines a fit): true, and the reason we drop it. Raise that RDD class's
    logger to ERROR (asked each time: a later session may run in a new JVM); left as it is
    where the JVM does not log through log4j 2."""
    try:
        log4j = jvm.org.apache.logging.log4j
        log4j.core.config.Configurator.setLevel(logger, log4j.Level.ERROR)
    except Py4JError:
        pass
