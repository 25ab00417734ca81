"""Pure recommendation code, grouped by job: ingest, als, evaluation, serving (and ids, shared).

Nothing here imports Dagster: it takes and returns Spark DataFrames or NumPy arrays, and is
tested on its own. Every knob is a field of a frozen dataclass declared with `setting`: its
default and its description are written once here, and the Dagster run configuration
(recsys_dagster.config) is derived from these dataclasses.
"""

from dataclasses import field


def setting(default, doc: str, **kw):
    """A dataclass field with its description (shown in the Dagster launchpad); a list or
    other mutable default is given as a factory."""
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata={"doc": doc}, **kw)
    return field(default=default, metadata={"doc": doc}, **kw)
