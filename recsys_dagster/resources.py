"""The Spark resource (built on dagster-pyspark) and the Parquet IO manager."""


from typing import Any

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import Field

from .partitions import AS_OF, as_of_day
from .paths import DATA_DIR_ENV, data_dir
from .spark_session import SparkSettings, build_session, resolve_settings
from .tables import RUN_ID, TableStore


class SparkResource(LazyPySparkResource):
    """One SparkSession for the heavy assets, created on first use.

    Settings come from resources/spark/<profile>.yaml, then environment variables
    (RECSYS_SPARK_PROFILE, RECSYS_SPARK_MASTER, RECSYS_SPARK_REMOTE,
    RECSYS_SPARK_CHECKPOINT_DIR), then the fields below. `spark_config` (from
    dagster-pyspark) overrides single Spark settings.
    """

    spark_config: dict[str, Any] = Field(
        default_factory=dict, description="Spark settings that override the profile's."
    )
    profile: str | None = Field(
        default=None,
        description="Name of a file in resources/spark/ (local, test, cluster, connect); "
        "default $RECSYS_SPARK_PROFILE or 'local'.",
    )
    master: str | None = Field(
        default=None, description="Spark master URL (local[*], spark://host:7077, yarn, k8s://...)."
    )
    remote: str | None = Field(
        default=None, description="Spark Connect URL (sc://host:15002); replaces master."
    )
    checkpoint_dir: str | None = Field(
        default=None, description="Checkpoint directory for ALS lineage truncation."
    )

    def settings(self) -> SparkSettings:
        return resolve_settings(
            profile=self.profile,
            master=self.master,
            remote=self.remote,
            checkpoint_dir=self.checkpoint_dir,
            overrides=self.spark_config,
        )

    def _init_session(self) -> None:
        if self._spark_session is None:
            self._spark_session = build_session(self.settings())


class Warehouse(dg.ConfigurableResource):
    """The base directory that every output table lives under."""

    base_dir: str = Field(
        default_factory=data_dir,
        description=f"Base directory for Parquet outputs; default ${DATA_DIR_ENV} or ./data.",
    )

    def store(self) -> TableStore:
        return TableStore(self.base_dir)


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores Spark DataFrames (a Table, a TableSet of them) as versioned Parquet tables,
    swapped in atomically (tables.TableStore)."""

    spark: dg.ResourceDependency[SparkResource]
    warehouse: dg.ResourceDependency[Warehouse]

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        name = "__".join(context.asset_key.path)
        store = self.warehouse.store()
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else []
        if len(keys) > 1:  # a single-run backfill: one DataFrame, split by its `day` column
            paths = store.write_days(name, obj, keys)
            context.add_output_metadata({"days_written": len(paths),
                                         "path": dg.MetadataValue.path(store.table_dir(name))})
            return
        path = store.write(name, obj, keys[0] if keys else None, extra={RUN_ID: context.run_id})
        context.add_output_metadata({"path": dg.MetadataValue.path(path)})

    def load_input(self, context: dg.InputContext):
        name = "__".join(context.asset_key.path)
        store = self.warehouse.store()
        session = self.spark.spark_session
        if not context.has_asset_partitions:
            if not store.exists(name) and not store.partitions(name):
                raise dg.Failure(f"{name} has not been materialised under {store.base_dir}; "
                                 f"materialise {name} first", allow_retries=False)
            return store.read(session, name)
        keys = list(context.asset_partition_keys)
        if (context.definition_metadata or {}).get(AS_OF):  # one current model: the run's day
            keys = [as_of_day(context.step_context.dagster_run.tags, store.partitions(name))]
        if len(keys) == 1:
            if not store.exists(name, keys[0]):  # no retry can mend it: fail the step now
                raise dg.Failure(
                    f"{name} for day {keys[0]} has not been materialised under "
                    f"{store.base_dir}; materialise {name} for {keys[0]} first",
                    allow_retries=False)
            return store.read(session, name, keys[0])
        frame, missing = store.read_days(session, name, keys)
        if missing:
            context.log.warning(
                f"{name}: {len(missing)} of {len(keys)} days in the window were never "
                f"materialised and are skipped ({missing[0]}..{missing[-1]})")
        return frame
