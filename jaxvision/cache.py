"""Where jaxvision keeps what it computes or fetches once: ImageNet weights, cached features.

`$JAXVISION_CACHE`, else ~/.cache/jaxvision. A leaf module, so that the feature cache of
training and the weight downloader name the same folder without importing each other.
"""

from __future__ import annotations

import os


def cache_dir() -> str:
    chosen = os.environ.get("JAXVISION_CACHE") or os.path.join("~", ".cache", "jaxvision")
    return os.path.abspath(os.path.expanduser(chosen))
