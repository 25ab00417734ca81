"""Implicit-feedback ALS: parameters, the confidence matrix, the one fit loop and its engines,
and fold-in. `train_als(confidence, ALSParams)` is the entry point.

The names are loaded when first used (PEP 562), so that code reading one module of the
package (the command line's confidence weights, say) does not import Spark and every engine.
"""

__all__ = ["ALSParams", "Factors", "train_als"]


def __getattr__(name: str):
    if name == "train_als":
        from .fit import train_als

        return train_als
    if name in ("ALSParams", "Factors"):
        from . import params

        return getattr(params, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
