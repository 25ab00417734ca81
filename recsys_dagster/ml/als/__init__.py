"""Implicit-feedback ALS: parameters, the confidence matrix, the one fit loop and its engines,
and fold-in. `train_als(confidence, ALSParams)` is the entry point."""

from .fit import train_als
from .params import ALSParams, Factors

__all__ = ["ALSParams", "Factors", "train_als"]
