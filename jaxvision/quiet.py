"""Log lines a user cannot act on, kept off the console.

Scoring a finished run opens its checkpoints read-only, and orbax says so six times; tfds warns
about its own deprecated `FeatureConnector.dtype` (which it calls itself) and names the builder
config of every dataset it opens. Both log through absl, so one filter on the absl logger drops
exactly these lines; every other warning still shows.
"""

from __future__ import annotations

import logging
import re

NOISE = re.compile(
    r"CheckpointManagerOptions\.read_only=True, setting"
    r"|Given directory is read only="
    r"|`FeatureConnector\.dtype` is deprecated"
    r"|Using custom data configuration"
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not NOISE.search(record.getMessage())


def install() -> None:
    """Adds the filter to the absl logger, once."""
    logger = logging.getLogger("absl")
    if not any(isinstance(f, _DropNoise) for f in logger.filters):
        logger.addFilter(_DropNoise())
