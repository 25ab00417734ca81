"""Engine dispatch."""

from __future__ import annotations

from pyspark.sql import DataFrame

from .mllib import train_mllib
from .params import ALSParams, Factors


def train_als(confidence: DataFrame, params: ALSParams) -> Factors:
    params.validate()
    if params.engine == "mllib":
        return train_mllib(confidence, params)
    raise ValueError(f"unknown ALS engine {params.engine!r}")
