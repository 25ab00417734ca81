"""Command line: run the whole pipeline in-process and show where the results are.

    python -m recsys_dagster.cli run [--config resources/config/demo.yaml]

The YAML file is a Dagster run config (the same text can be pasted into the UI's launchpad).
With DAGSTER_HOME set (the Makefile sets it) the run is recorded, so `dagster dev` shows it.
"""

import argparse
import os
import sys
import time

import yaml


def _instance():
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        os.makedirs(os.environ["DAGSTER_HOME"], exist_ok=True)
        return dg.DagsterInstance.get()
    return dg.DagsterInstance.ephemeral()


def run(config_path: str | None, show_users: int) -> int:
    from .definitions import defs
    from .jobs import PIPELINE_JOB
    from .paths import data_dir
    from .tables import TableStore

    run_config = {}
    if config_path:
        with open(config_path, encoding="utf-8") as fh:
            run_config = yaml.safe_load(fh) or {}
    job = defs.resolve_job_def(PIPELINE_JOB)
    t0 = time.perf_counter()
    result = job.execute_in_process(run_config=run_config, instance=_instance(),
                                    raise_on_error=False)
    wall = time.perf_counter() - t0
    failed_checks = [e for e in result.get_asset_check_evaluations() if not e.passed]
    store = TableStore(data_dir())
    print(f"\nrun {result.run_id}: {'SUCCESS' if result.success else 'FAILED'} "
          f"in {wall:.1f} s")
    for check in failed_checks:
        print(f"  check FAILED: {check.asset_key.to_user_string()} {check.check_name}")
    if not result.success:
        return 1
    print(f"\noutputs under {store.base_dir}:")
    for name in ("play_events", "play_events_quarantine", "item_catalog", "user_index",
                 "item_index", "interactions", "evaluation_split", "als_tuning",
                 "confidence_matrix", "als_model",
                 "evaluation_metrics", "user_recommendations", "similar_items"):
        if store.exists(name):
            print(f"  {name:24s} {os.path.join(store.table_dir(name), 'current')}")
    metrics = store.read_pandas("evaluation_metrics", frame="metrics")
    overall = metrics[(metrics.segment == "all") & ~metrics.model.str.contains("-")]
    print("\nevaluation (test split):")
    print(overall.pivot(index="metric", columns="model", values="value").to_string(
        float_format=lambda v: f"{v:.4f}"))
    ci = metrics[metrics.ci_low.notna()]
    for r in ci.itertuples():
        print(f"  {r.model} {r.metric}@{r.k}: {r.value:.4f} (95% CI {r.ci_low:.4f}..{r.ci_high:.4f})")
    recs = store.read_pandas("user_recommendations")
    names = store.read_pandas("item_catalog")
    if len(names):
        recs = recs.merge(names, on="item_id", how="left")
    users = sorted(recs.user_id.unique())[:show_users]
    print(f"\nrecommendations for {len(users)} of {recs.user_id.nunique()} users:")
    for user in users:
        rows = recs[recs.user_id == user].sort_values("rank").head(5)
        label = rows.get("name", rows.item_id).fillna(rows.item_id) if "name" in rows else rows.item_id
        items = ", ".join(f"{lab} ({s:.2f})" for lab, s in zip(label, rows.score))
        print(f"  {user}: {items}")
    if failed_checks:
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="materialise every asset in-process")
    p_run.add_argument("--config", help="Dagster run config YAML (resources/config/*.yaml)")
    p_run.add_argument("--show-users", type=int, default=3, help="users to print")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.config, args.show_users)
    return 2


if __name__ == "__main__":
    sys.exit(main())
