"""Shared set-up for the benchmark scripts: a Spark session from a profile, lastfm interactions,
a warehouse a pipeline run left."""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recsys_dagster.ml.ingest import sources  # noqa: E402
from recsys_dagster.ml.ingest.indexing import index_and_build  # noqa: E402
from recsys_dagster.ml.ingest.validation import validate_plays  # noqa: E402
from recsys_dagster.spark_session import build_session, resolve_settings  # noqa: E402

DEFAULT_LASTFM = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                              "lastfm-2k")


def spark_session(profile: str = "local", overrides: dict | None = None):
    """A session whose ALS checkpoints go to a temporary folder, never into the repository."""
    checkpoints = tempfile.mkdtemp(prefix="recsys-bench-checkpoints-")
    return build_session(resolve_settings(profile=profile, overrides=overrides or {},
                                          checkpoint_dir=checkpoints))


def run_warehouse():
    """(store, spark, evaluation_split) of the warehouse named by --data (default
    $RECSYS_DATA_DIR or ./data, e.g. after `make demo`)."""
    import argparse

    from recsys_dagster.resources import SparkResource
    from recsys_dagster.tables import TableStore

    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=os.environ.get("RECSYS_DATA_DIR", "data"))
    store = TableStore(os.path.abspath(parser.parse_known_args()[0].data))  # the rest: the script's
    spark = SparkResource().spark_session
    return store, spark, store.read(spark, "evaluation_split")


PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_processes(root_pid: int) -> list[tuple[int, str, int]]:
    """(pid, name, resident bytes) of a process and all its descendants (from /proc).

    A child whose resident set is its parent's, within 10%, is left out: the JVM starts
    `chmod` and the like by a vfork-style spawn, and until the exec /proc shows the child
    (named after the spawning thread) with the parent's whole resident set, so a 5 GiB JVM
    would count twice; a forked Python worker is, at first, its small daemon's pages. (The
    child's executable is no test: it can exec between two reads of /proc.)"""
    children: dict[int, list[int]] = {}
    stat: dict[int, tuple[str, int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                head, tail = fh.read().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        pid = int(entry)
        # fields[1]: ppid; [21]: rss in pages
        stat[pid] = (head.split("(", 1)[1], int(fields[1]), int(fields[21]) * PAGE)
        children.setdefault(int(fields[1]), []).append(pid)
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        if pid not in stat:
            continue
        name, ppid, rss = stat[pid]
        parent = stat.get(ppid)
        if pid != root_pid and parent is not None and 0.9 * parent[2] <= rss <= 1.1 * parent[2]:
            continue  # its parent's memory, seen through the child: counted with the parent
        out.append((pid, name, rss))
    return out


def tree_rss(root_pid: int) -> int:
    """Resident bytes of a process and all its descendants (tree_processes)."""
    return sum(rss for _, _, rss in tree_processes(root_pid))


def lastfm_interactions(spark, folder: str = DEFAULT_LASTFM):
    raw = sources.read_lastfm_user_artists(spark, folder)
    events, _ = validate_plays(raw)
    return index_and_build(events).persist()
