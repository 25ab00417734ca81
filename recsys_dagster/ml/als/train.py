"""Engine dispatch."""

from __future__ import annotations

from pyspark.sql import DataFrame

from .broadcast import train_broadcast
from .gridify import train_gridified
from .mllib import train_mllib
from .params import ALSParams, Factors


def train_als(confidence: DataFrame, params: ALSParams) -> Factors:
    params.validate()
    if params.engine == "mllib":
        return train_mllib(confidence, params)
    if params.engine == "broadcast":
        return train_broadcast(confidence, params)
    if params.engine in ("half_gridify", "full_gridify"):
        return train_gridified(confidence, params)
    raise ValueError(f"unknown ALS engine {params.engine!r}")
