"""Run configuration: one dg.Config class per asset that has knobs, derived from the `ml/`
dataclasses, which hold the one definition of every default and its description.

`config_class(Params)` makes a dg.Config with a field per dataclass field (same name, type,
default and description; a nested dataclass becomes a nested Config), plus the Dagster-only
fields given as `extra`; `.params()` turns a run's config back into the dataclass.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import MISSING

import dagster as dg
import pydantic
from pydantic import Field

from .ml.als import ALSParams
from .ml.als.artist_model import ArtistModelParams
from .ml.als.confidence import ConfidenceParams
from .ml.evaluation.artist_evaluation import ArtistEvaluationParams
from .ml.evaluation.evaluate import EvaluationParams
from .ml.evaluation.split import SplitParams
from .ml.evaluation.tuning import SEARCHED, TuningParams
from .ml.ingest.datagen import SyntheticSpec
from .ml.ingest.sources import FileSource, PlaySource
from .ml.serving.ann import TopKParams
from .ml.serving.recommend import RecommendationParams, SimilarItemsParams
from .ml.serving.similar_artists import SimilarArtistsParams
from .ml.serving.stations import RadioParams

_PARAMS_OF: dict[type, type] = {}  # Config class -> its dataclass
_CONFIG_OF: dict[type, type] = {}  # dataclass -> its Config class


class ParamsConfig(dg.Config):
    """A dg.Config derived from an ml/ dataclass (config_class)."""

    def params(self):
        """The dataclass these settings describe (nested Configs become nested dataclasses;
        Dagster-only fields are left out)."""
        cls = _PARAMS_OF[type(self)]
        values = {}
        for f in dataclasses.fields(cls):
            value = getattr(self, f.name)
            values[f.name] = value.params() if isinstance(value, ParamsConfig) else value
        return cls(**values)


def config_class(params_cls: type, extra: dict[str, tuple] | None = None) -> type:
    """The dg.Config class of a frozen dataclass whose fields were declared with ml.setting."""
    hints = typing.get_type_hints(params_cls)
    fields = {}
    for f in dataclasses.fields(params_cls):
        tp, doc = hints[f.name], f.metadata["doc"]
        if tp in _CONFIG_OF:  # a nested dataclass: its own Config, made first
            fields[f.name] = (_CONFIG_OF[tp], Field(default_factory=_CONFIG_OF[tp],
                                                    description=doc))
        elif f.default is not MISSING:
            fields[f.name] = (tp, Field(default=f.default, description=doc))
        else:
            fields[f.name] = (tp, Field(default_factory=f.default_factory, description=doc))
    for name, spec in (extra or {}).items():
        fields[name] = spec
    name = params_cls.__name__.removesuffix("Params").removesuffix("Spec") + "Config"
    config = pydantic.create_model(name, __base__=ParamsConfig, __doc__=params_cls.__doc__,
                                   __module__=__name__, **fields)
    _PARAMS_OF[config], _CONFIG_OF[params_cls] = params_cls, config
    return config


def _use_tuned(params_cls: type) -> tuple:
    tuned = [f.name for f in dataclasses.fields(params_cls) if f.name in SEARCHED]
    return (bool, Field(default=False, description=f"Take {', '.join(tuned)} from als_tuning's "
                                                  "best trial (when it ran)."))


SyntheticConfig = config_class(SyntheticSpec)
FileSourceConfig = config_class(FileSource)
PlaySourceConfig = config_class(PlaySource)
ConfidenceConfig = config_class(ConfidenceParams, {"use_tuned": _use_tuned(ConfidenceParams)})
ALSConfig = config_class(ALSParams, {"use_tuned": _use_tuned(ALSParams)})
SplitConfig = config_class(SplitParams)
TuningConfig = config_class(TuningParams)
EvaluationConfig = config_class(EvaluationParams)
TopKConfig = config_class(TopKParams)  # made first: both top-N configs nest it
RecommendationsConfig = config_class(RecommendationParams)
SimilarItemsConfig = config_class(SimilarItemsParams)
SimilarArtistsConfig = config_class(SimilarArtistsParams)
ArtistModelConfig = config_class(ArtistModelParams)
RadioConfig = config_class(RadioParams)  # made first: ArtistEvaluationConfig nests it
ArtistEvaluationConfig = config_class(ArtistEvaluationParams)
