"""recsys-dagster: implicit-feedback ALS music recommendations on Spark, as Dagster assets."""

__version__ = "0.1.0"
