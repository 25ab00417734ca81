"""Pure recommendation code: takes and returns Spark DataFrames or arrays; no Dagster import."""
