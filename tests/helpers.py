"""Small helpers shared by tests."""

import dagster as dg


def materialize(selection, resources, run_config=None, raise_on_error=True, instance=None):
    """Materialise a selection of the real Definitions' assets and checks in-process."""
    from recsys_dagster.definitions import ASSETS
    from recsys_dagster.checks import ALL_CHECKS

    return dg.materialize(
        [*ASSETS, *ALL_CHECKS], selection=selection, resources=resources,
        run_config=run_config or {}, raise_on_error=raise_on_error, instance=instance,
    )


def checks_by_name(result):
    return {(e.asset_key.path[-1], e.check_name): e.passed
            for e in result.get_asset_check_evaluations()}
