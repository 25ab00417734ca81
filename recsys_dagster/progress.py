"""Progress of a long step, in its run log: a person watching the UI knows the run is alive.

`Heartbeat` is a context manager around a step's work. Every `every_s` seconds (default 30,
or RECSYS_PROGRESS_SECONDS) it logs one line: what the step's own loop last reported through
`update(done, total, unit)` (the ALS fit: its iterations) with the time elapsed and an
estimate of what is left; or, when the step reports nothing, the Spark tasks done of the
stages running now. A step shorter than `every_s` logs nothing. No Dagster import: it takes a
log function.
"""

from __future__ import annotations

import threading
import time

from . import settings

PROGRESS_ENV = settings.PROGRESS_SECONDS.name


def every_seconds() -> float:
    return settings.read(settings.PROGRESS_SECONDS)


class Heartbeat:
    def __init__(self, log, what: str, spark=None, every_s: float | None = None):
        self.log, self.what, self.every_s = log, what, every_s or every_seconds()
        self._tracker = _status_tracker(spark)
        self._done = self._total = 0
        self._unit = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"progress-{what}",
                                        daemon=True)
        self._t0 = time.monotonic()

    def update(self, done: int, total: int, unit: str) -> None:
        """What the step's own loop has done so far (e.g. 3 of 10 iterations)."""
        self._done, self._total, self._unit = done, total, unit

    def line(self) -> str:
        elapsed = time.monotonic() - self._t0
        if self._total:
            left = (f", about {elapsed / self._done * (self._total - self._done):.0f} s left"
                    if self._done else "")
            return (f"{self.what}: {self._done} of {self._total} {self._unit} done, "
                    f"{elapsed:.0f} s elapsed{left}")
        tasks = self._spark_tasks()
        if tasks is None:
            return f"{self.what}: running, {elapsed:.0f} s elapsed"
        done, total, stages = tasks
        return (f"{self.what}: {elapsed:.0f} s elapsed; Spark: {done} of {total} tasks done "
                f"in {stages} running stage{'s' if stages != 1 else ''}")

    def _spark_tasks(self):
        if self._tracker is None:
            return None
        done = total = 0
        stages = self._tracker.getActiveStageIds()
        for stage_id in stages:
            info = self._tracker.getStageInfo(stage_id)
            if info is not None:
                done, total = done + info.numCompletedTasks, total + info.numTasks
        return done, total, len(stages)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.log(self.line())
            except Exception:  # a log line must never fail the step
                pass

    def __enter__(self) -> Heartbeat:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _status_tracker(spark):
    """Spark's status tracker, or None (no session, or Spark Connect, which has none)."""
    try:
        return spark.sparkContext.statusTracker() if spark is not None else None
    except Exception:
        return None
