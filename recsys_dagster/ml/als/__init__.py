"""Implicit-feedback ALS engines. Each takes a confidence matrix and returns factor tables."""

from .params import ALSParams, Factors
from .train import train_als

__all__ = ["ALSParams", "Factors", "train_als"]
