"""Log lines a user cannot act on, kept off the console.

Scoring a finished run opens its checkpoints read-only, and orbax says so six times; tfds warns
about its own deprecated `FeatureConnector.dtype` (which it calls itself, in partial decoding) and
names the builder config of every dataset it opens. Both log through absl, so one filter on the
absl logger drops exactly these lines; every other warning still shows.

TensorFlow (only the data pipeline's) writes straight to file descriptor 2 as its libraries load,
where neither `logging` nor TF_CPP_MIN_LOG_LEVEL reaches: absl's C++ logging, not yet initialised,
notes that it writes to stderr, and each of two libraries says that oneDNN ops are on (set
TF_ENABLE_ONEDNN_OPTS=0 to turn them off; the model itself runs in JAX). So the first
`import tensorflow` runs with descriptor 2 read into a file, and all but those lines are written
back to it once the import is done, successful or not.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import logging
import os
import re
import sys
import tempfile

NOISE = re.compile(
    r"CheckpointManagerOptions\.read_only=True, setting"
    r"|Given directory is read only="
    r"|`FeatureConnector\.dtype` is deprecated"
    r"|Using custom data configuration"
)
# Whole lines, as TensorFlow 2.21's libraries write them while `import tensorflow` loads them.
NATIVE_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. .*"
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not NOISE.search(record.getMessage())


@contextlib.contextmanager
def native_stderr_without(noise: re.Pattern = NATIVE_NOISE):
    """Everything written to file descriptor 2 inside the block, by C++ or Python, is written to it
    again when the block ends, less the lines that `noise` matches in full."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # no stderr (a daemon, pythonw): nothing to keep off it
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().splitlines(keepends=True)
            kept = b"".join(line for line in lines if not noise.fullmatch(line.decode(errors="replace").rstrip()))
            if kept:
                os.write(2, kept)


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of `tensorflow` inside `native_stderr_without`, then steps aside with
    the finder that put it there: the module keeps its own loader, and later imports are as usual."""

    def __init__(self, loader, finder):
        self._loader, self._finder = loader, finder

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        try:
            with native_stderr_without():
                self._loader.exec_module(module)
        finally:
            module.__loader__ = module.__spec__.loader = self._loader
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self._finder)

    def __getattr__(self, name):  # get_resource_reader, is_package, ... of the real loader
        if name.startswith("__") or name in ("_loader", "_finder"):
            raise AttributeError(name)
        return getattr(self._loader, name)


class _QuietTensorflowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the other finders do, with `_QuietLoader` around its loader (a bare
    `importlib.util.find_spec` gets one too, which nothing runs), until TensorFlow is imported."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(name, path, target) if find else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader, self)
                return spec
        return None


def install() -> None:
    """Adds the filter to the absl logger, and the quiet import of TensorFlow, once."""
    logger = logging.getLogger("absl")
    if not any(isinstance(f, _DropNoise) for f in logger.filters):
        logger.addFilter(_DropNoise())
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorflowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorflowImport())
