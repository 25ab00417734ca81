"""Day-one operations as jobs (operations.py does the work): launched from the UI's launchpad,
they are queued behind any run that writes the same warehouse (their ops are in its pool)."""

import dagster as dg
from pydantic import Field

from . import operations
from .assets.helpers import OWNERS, POOL
from .resources import Warehouse

ROLLBACK_JOB = "rollback_served_model"
FORGET_JOB = "forget_listener"


class ForgetConfig(dg.Config):
    user_id: str = Field(description="The listener's id, as in the play logs.")


@dg.op(pool=POOL, tags={"owner": OWNERS[0]})
def roll_back(context: dg.OpExecutionContext, warehouse: Warehouse) -> dict:
    """Serve the model served before the current one again (its pinned tables and factors)."""
    try:
        done = operations.rollback(warehouse.store())
    except operations.OperationError as err:
        raise dg.Failure(str(err), allow_retries=False) from err
    context.log.info(f"rolled back from {done['from_model']} to {done['to_model']}")
    context.add_output_metadata({k: str(v) for k, v in done.items()})
    return done


@dg.op(pool=POOL, tags={"owner": OWNERS[0]})
def forget(context: dg.OpExecutionContext, config: ForgetConfig, warehouse: Warehouse) -> dict:
    """Remove a listener's plays, factors and served rows from every kept table version."""
    try:
        done = operations.forget_listener(warehouse.store(), config.user_id)
    except operations.OperationError as err:
        raise dg.Failure(str(err), allow_retries=False) from err
    context.log.info(f"forgot listener {config.user_id}: {done['rows_removed']}")
    context.add_output_metadata({"rows_removed": dg.MetadataValue.json(done["rows_removed"])})
    return done


@dg.job(name=ROLLBACK_JOB, description="Serve the previously served model again "
        "(operations.rollback).")
def rollback_served_model():
    roll_back()


@dg.job(name=FORGET_JOB, description="Forget a listener: their rows leave every kept table "
        "version; _erasures/erasures.jsonl records it (operations.forget_listener).")
def forget_listener():
    forget()


OPERATION_JOBS = [rollback_served_model, forget_listener]
