"""Training: implicit ALS factors on Spark."""


import dagster as dg

from ..config import ALSConfig
from ..ml.als import train_als
from ..tables import TableSet
from .metadata import KINDS, OWNERS, column_schema


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, code_version="1")
def als_model(context: dg.AssetExecutionContext, config: ALSConfig, confidence_matrix: TableSet):
    """User and item factors from implicit-feedback ALS on the confidence matrix."""
    params = config.params()
    factors = train_als(confidence_matrix["matrix"], params)
    users, items = factors.user_factors, factors.item_factors
    n_users, n_items = users.count(), items.count()
    context.log.info(f"ALS {params.engine}: {factors.timings}")
    model_params = {"als": params.as_dict(), **confidence_matrix.params}
    return dg.Output(
        TableSet({"user_factors": users, "item_factors": items},
                 {**model_params, "timings": factors.timings}),
        metadata={
            "dagster/row_count": n_users + n_items,
            "dagster/column_schema": column_schema(users),
            "users": n_users, "items": n_items, "rank": params.rank,
            "engine": params.engine, "max_iter": params.max_iter, "reg_param": params.reg_param,
            "fit_seconds": float(factors.timings["fit_seconds"]),
            "seconds_per_iteration": float(factors.timings["seconds_per_iteration"]),
            "params": dg.MetadataValue.json(model_params),
        },
    )
