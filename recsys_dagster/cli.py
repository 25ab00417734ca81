"""Command line: run the whole pipeline in-process and show where the results are.

    python -m recsys_dagster.cli run [--config resources/config/demo.yaml]
    python -m recsys_dagster.cli backfill --from 2024-03-24 --to 2024-03-30 [--config ...]
    python -m recsys_dagster.cli radio --artist NAME [--user ID] [--length N]

`run` ingests every day of the play-log calendar in one run (job ingest_play_logs_job), then
retrains as of the newest day (job retrain_and_publish). `backfill` (re-)ingests a range of
days only; a re-delivered day replaces the stored one. `radio` prints an artist's station, or
a listener's own, from the served tables (no Spark, no retraining).

The YAML file is a Dagster run config (the same text can be pasted into the UI's launchpad).
With DAGSTER_HOME set (the Makefile sets it) the run is recorded, so `dagster dev` shows it.
"""

import argparse
import os
import sys
import threading
import time

import yaml

from .paths import DATA_DIR_ENV


def _instance():
    """The instance of $DAGSTER_HOME (given deploy/dagster.dev.yaml when it has no
    dagster.yaml: SQLite, telemetry off), or an ephemeral one."""
    import dagster as dg

    from .deployment.instance import ensure_home

    if os.environ.get("DAGSTER_HOME"):
        ensure_home(os.environ["DAGSTER_HOME"])
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def _load_config(config_path: str | None) -> dict:
    if not config_path:
        return {}
    with open(config_path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def _resources(data: str | None) -> dict:
    """The run's resources: the Definitions' own, or their warehouse moved to `data`."""
    if not data:
        return {}
    from .definitions import make_resources
    from .resources import Warehouse

    res = make_resources(warehouse=Warehouse(base_dir=os.path.abspath(data)))
    return {k: v for k, v in res.items() if k != "spark"}


def _warm_spark(run_config: dict) -> None:
    """Start the Spark session in a thread while Dagster loads the definitions and creates the
    run, so that the JVM's start (seconds) overlaps them; the run's Spark resource then joins
    the session (getOrCreate). Not when the run config configures the Spark resource: its
    settings must make the session. A failure here is left to the run's own start to report."""
    if (run_config.get("resources") or {}).get("spark"):
        return
    from .spark_session import build_session, resolve_settings

    def start():
        try:
            build_session(resolve_settings())
        except Exception:  # noqa: BLE001 - the step that needs Spark reports it
            pass

    threading.Thread(target=start, name="spark-warm-up", daemon=True).start()


def _ingest(run_config: dict, first: str, last: str, instance, data: str | None = None):
    from .definitions import defs
    from .jobs import INGEST_JOB
    from .pipeline import config_for, range_tags

    job = defs.resolve_job_def(INGEST_JOB)
    return job.execute_in_process(run_config=config_for(run_config, ingestion=True),
                                  instance=instance, tags=range_tags(first, last),
                                  resources=_resources(data),
                                  raise_on_error=False)


def _report(result, what: str, wall: float, instance) -> bool:
    """Print the run's outcome, its failed checks and the checks it did not execute; True when
    it succeeded with no check failed at ERROR severity."""
    import dagster as dg

    print(f"\n{what}: run {result.run_id} {'SUCCESS' if result.success else 'FAILED'} "
          f"in {wall:.1f} s")
    for check in [e for e in result.get_asset_check_evaluations() if not e.passed]:
        warning = check.severity == dg.AssetCheckSeverity.WARN
        print(f"  check {'warning' if warning else 'FAILED'}: "
              f"{check.asset_key.to_user_string()} {check.check_name}"
              + (f" ({_warning_detail(check)})" if warning else ""))
    if result.success:
        for (asset, check), reason in _not_executed(result, instance).items():
            print(f"  check not executed: {asset} {check}" + (f" ({reason})" if reason else ""))
    return result.success and not _failed_checks(result)


def _not_executed(result, instance) -> dict:
    """(asset, check) -> reason, for the checks a run planned and never evaluated; the reason
    is what the asset logged (assets.helpers.not_executed)."""
    import dagster as dg

    planned = {(p.asset_key.to_user_string(), p.check_name) for p in (
        entry.dagster_event.event_specific_data for entry in instance.all_logs(
            result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED))}
    done = {(e.asset_key.to_user_string(), e.check_name)
            for e in result.get_asset_check_evaluations()}
    logged = [(entry.step_key, entry.user_message) for entry in instance.all_logs(result.run_id)]
    reasons = {}
    for asset, check in sorted(planned - done):  # an asset's step is named after it
        said = [m.split(" not executed: ", 1)[1] for step, m in logged
                if step == asset and m.startswith(f"check {check} not executed: ")]
        reasons[asset, check] = said[0] if said else ""
    return reasons


def _failed_checks(result) -> list:
    """The checks that failed with ERROR severity (a WARN check that failed is a warning)."""
    import dagster as dg

    return [e for e in result.get_asset_check_evaluations()
            if not e.passed and e.severity != dg.AssetCheckSeverity.WARN]


def _warning_detail(check) -> str:
    return ", ".join(f"{k} {v.value}" for k, v in check.metadata.items())


def backfill(config_path: str | None, first: str, last: str, data: str | None = None) -> int:
    t0 = time.perf_counter()
    run_config = _load_config(config_path)
    _warm_spark(run_config)
    instance = _instance()
    result = _ingest(run_config, first, last, instance, data)
    return 0 if _report(result, f"ingest {first}..{last}", time.perf_counter() - t0,
                        instance) else 1


def run(config_path: str | None, show_users: int, data: str | None = None) -> int:
    """Ingest every day of the calendar, retrain as of the newest, print where the results
    are and what they say. 0 when both runs succeeded with no check failed."""
    from .pipeline import calendar

    t0 = time.perf_counter()
    run_config = _load_config(config_path)
    _warm_spark(run_config)  # the JVM starts while Dagster is imported and the instance opened
    instance = _instance()
    first, last = calendar()
    ingest = _ingest(run_config, first, last, instance, data)
    if not _report(ingest, f"ingest {first}..{last}", time.perf_counter() - t0, instance):
        return 1
    t1 = time.perf_counter()
    result = _retrain(run_config, last, instance, data)
    passed = _report(result, f"retrain as of {last}", time.perf_counter() - t1, instance)
    print(f"whole pipeline: {time.perf_counter() - t0:.1f} s")
    if not result.success:
        return 1
    from .served.summary import summary

    print(summary(_store(data), show_users))
    return 0 if passed else 1


def _retrain(run_config: dict, day: str, instance, data: str | None):
    from .definitions import defs
    from .jobs import RETRAIN_JOB
    from .pipeline import config_for

    return defs.resolve_job_def(RETRAIN_JOB).execute_in_process(
        run_config=config_for(run_config, ingestion=False), instance=instance,
        partition_key=day, resources=_resources(data), raise_on_error=False)


def radio(artist: str, user: str | None, length: int | None, data: str | None) -> int:
    """Print the station of `artist`, or a listener's own one, from the served tables."""
    from .served.station_lookup import RadioLookupError, ServedRadio, format_station
    from .served.summary import ITEMS_ARE_ARTISTS

    store = _store(data)
    try:
        served = ServedRadio.load(store)
        table = served.station(artist, user, length)
    except RadioLookupError as err:
        print(f"radio: {err}", file=sys.stderr)
        return 2
    label = served.labels().iloc[served.artist(artist)]
    title = (f"radio of {label} for listener {user} (songs they played left out)" if user
             else f"radio of {label}")
    if served.items_are_artists:
        title += ITEMS_ARE_ARTISTS
    print(format_station(table, title))
    return 0


def _store(data: str | None):
    from .paths import data_dir
    from .tables import TableStore

    return TableStore(os.path.abspath(data) if data else data_dir())


def recommend(user: str | None, plays: str | None, n: int, explain: bool,
              data: str | None) -> int:
    """A listener's served recommendations (--explain: the plays behind each), or a new
    listener's from a file of plays, folded into the served model."""
    from .served.model import ServedLookupError, ServedModel
    from .served.recommendations import explain as reasons
    from .served.recommendations import read_plays, recommend_new, served_list

    store = _store(data)
    try:
        if plays:
            model = ServedModel.load(store)
            table, unknown = recommend_new(model, read_plays(plays), n)
            print(f"recommendations for the listener of {plays} (folded into the served model"
                  f" {model.version}):")
            if unknown:
                print(f"  ({len(unknown)} items the model does not know were left out: "
                      f"{', '.join(map(str, unknown[:5]))})")
            for r in table.itertuples():
                print(f"  {r.rank:2d}. {model.label(r.item_id)} ({r.score:.2f})")
            return 0
        table = served_list(store, user, n)
        model = ServedModel.load(store) if explain else None
        why = reasons(model, user, table.item_id.tolist()) if explain else None
    except ServedLookupError as err:
        print(f"recommend: {err}", file=sys.stderr)
        return 2
    label = model.label if model else _catalogue_label(store, table.item_id)
    folded = " (folded in since the model was trained)" if table.folded_in.any() else ""
    print(f"recommendations for listener {user}{folded}:")
    for i, r in enumerate(table.itertuples()):
        print(f"  {r.rank:2d}. {label(r.item_id)} ({r.score:.2f})")
        if why is not None:
            because = ", ".join(f"{name} ({share:+.2f})" for name, share in why[i])
            print(f"      because you played: {because or 'nothing the model knows'}")
    return 0


def _catalogue_label(store, item_ids):
    """item_id -> its catalogue name, else the id, for the items listed."""
    from .served.catalogue import newest_catalogue

    names = newest_catalogue(store, item_ids, ("name",)).set_index("item_id").name
    return lambda item: names.get(item) if isinstance(names.get(item), str) else item


def similar(artist: str | None, song: str | None, n: int, data: str | None) -> int:
    from .served.model import ServedLookupError
    from .served.similar import similar_artists, similar_songs

    store = _store(data)
    try:
        name, table = (similar_artists(store, artist, n) if artist
                       else similar_songs(store, song, n))
    except ServedLookupError as err:
        print(f"similar: {err}", file=sys.stderr)
        return 2
    print(f"{'artists' if artist else 'songs'} similar to {name}:")
    for r in table.itertuples():
        print(f"  {r.rank:2d}. {r.similar} ({r.score:.2f})")
    return 0


def operate(command: str, data: str | None, user: str | None) -> int:
    """`rollback` or `forget --user ID` on a warehouse (operations.py)."""
    from . import operations

    store = _store(data)
    try:
        done = (operations.rollback(store) if command == "rollback"
                else operations.forget_listener(store, user))
    except operations.OperationError as err:
        print(f"{command}: {err}", file=sys.stderr)
        return 2
    if command == "rollback":
        print(f"rolled back from model {done['from_model']} to {done['to_model']}: "
              f"{', '.join(done['tables']) or 'no table'} swapped back"
              + (f"; not rolled back: {', '.join(done['not_rolled_back'])}"
                 if done["not_rolled_back"] else ""))
    else:
        print(f"forgot listener {user}: rows removed {done['rows_removed']} "
              f"(recorded in {os.path.join(store.base_dir, operations.ERASURES_LOG)})")
    return 0


def _parser() -> argparse.ArgumentParser:
    """The commands and their options."""
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="materialise every asset in-process")
    p_run.add_argument("--config", help="Dagster run config YAML (resources/config/*.yaml)")
    p_run.add_argument("--show-users", type=int, default=3, help="users to print")
    p_run.add_argument("--data-dir", help=f"where the tables go (default ${DATA_DIR_ENV} or "
                       "./data)")
    p_radio = sub.add_parser("radio", help="an artist's radio station, or a listener's own, "
                             "from the served tables (no Spark)")
    p_radio.add_argument("--artist", required=True, help="the seed artist's name or id")
    p_radio.add_argument("--user", help="a listener's id: their own station, without the "
                         "songs they played")
    p_radio.add_argument("--length", type=int, help="songs in the station (default: the "
                         "served radio's length)")
    p_radio.add_argument("--data-dir", help=f"where the tables are (default ${DATA_DIR_ENV} or "
                         "./data)")
    p_rec = sub.add_parser("recommend", help="a listener's served recommendations (no Spark)")
    who = p_rec.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a listener's id")
    who.add_argument("--plays", help="a CSV of a new listener's plays (item_id[,plays]): "
                     "folded into the served model")
    p_rec.add_argument("--n", type=int, default=10, help="how many (default 10)")
    p_rec.add_argument("--explain", action="store_true", help="the plays behind each one")
    p_rec.add_argument("--data-dir", help=f"where the tables are (default ${DATA_DIR_ENV} or "
                       "./data)")
    p_sim = sub.add_parser("similar", help="an artist's or a song's served similar list")
    what = p_sim.add_mutually_exclusive_group(required=True)
    what.add_argument("--artist", help="the artist's name or id")
    what.add_argument("--song", help="the song's name or id")
    p_sim.add_argument("--n", type=int, default=10, help="how many (default 10)")
    p_sim.add_argument("--data-dir", help=f"where the tables are (default ${DATA_DIR_ENV} or "
                       "./data)")
    p_back = sub.add_parser("rollback", help="serve the previously served model again (no "
                            "Spark); in a deployment, prefer the job rollback_served_model")
    p_back.add_argument("--data-dir", help=f"the warehouse (default ${DATA_DIR_ENV} or ./data)")
    p_forget = sub.add_parser("forget", help="remove a listener from every kept table version "
                              "(no Spark); in a deployment, prefer the job forget_listener")
    p_forget.add_argument("--user", required=True, help="the listener's id")
    p_forget.add_argument("--data-dir", help=f"the warehouse (default ${DATA_DIR_ENV} or ./data)")
    p_fill = sub.add_parser("backfill", help="(re-)ingest a range of days of play logs")
    p_fill.add_argument("--from", dest="first", required=True, help="first day, YYYY-MM-DD")
    p_fill.add_argument("--to", dest="last", required=True, help="last day, YYYY-MM-DD")
    p_fill.add_argument("--config", help="Dagster run config YAML (its ingest section is used)")
    p_fill.add_argument("--data-dir", help=f"where the tables go (default ${DATA_DIR_ENV} or "
                        "./data)")
    return parser


def main(argv=None, standalone: bool = False) -> int:
    """Entry point; standalone (the console script, `python -m`) stops Spark at the end."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run(args.config, args.show_users, args.data_dir)
        if args.command == "radio":
            return radio(args.artist, args.user, args.length, args.data_dir)
        if args.command == "recommend":
            if args.explain and args.plays:
                parser.error("--explain explains a served listener's list (--user)")
            return recommend(args.user, args.plays, args.n, args.explain, args.data_dir)
        if args.command == "similar":
            return similar(args.artist, args.song, args.n, args.data_dir)
        if args.command in ("rollback", "forget"):
            return operate(args.command, args.data_dir, getattr(args, "user", None))
        return backfill(args.config, args.first, args.last, args.data_dir)
    finally:
        if standalone:
            from .spark_session import stop_sessions

            stop_sessions()


def console() -> None:
    sys.exit(main(standalone=True))


if __name__ == "__main__":
    console()
