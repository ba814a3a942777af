"""What the experiment files share: answering `get_config(variant)` and building a suite.

Not an experiment file (its name starts with an underscore): experiments/ is no package, so the
experiment files load it by path,

    common = types.SimpleNamespace(**runpy.run_path(os.path.join(HERE, "_common.py")))

as they load each other's configs with `jaxvision.configs.load_config('FILE.py:variant')`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import ml_collections


def variant_config(path: str, variant: str, builders: Mapping[str, Callable[[], ml_collections.ConfigDict]]):
    """The config of `variant` of the experiment file `path`, from `builders` (variant -> a function
    of no arguments, in the order the sentence for an unknown variant lists them)."""
    if variant not in builders:
        raise ValueError(
            f"Unknown variant {variant!r} of experiments/{os.path.basename(path)}: use one of {', '.join(builders)}."
        )
    return builders[variant]()


def suite(title: str, runs: Mapping[str, ml_collections.ConfigDict], order=None, notes=(), **fields):
    """A suite config (jaxvision/research/suite.py): `runs` by name, run in `order` (default: the
    order of `runs`), with the report's `title`, `notes` and any other `config.suite` fields
    (claims, confusions, scaling)."""
    config = ml_collections.ConfigDict()
    config.suite = ml_collections.ConfigDict(
        dict(title=title, order=tuple(runs) if order is None else tuple(order), notes=tuple(notes), **fields)
    )
    config.runs = ml_collections.ConfigDict(dict(runs))
    return config
