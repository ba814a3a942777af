"""Reads the tensors of a TorchScript archive (`torch.jit.save`) without torch, and safely.

A TorchScript `.pt` file is a zip archive: `<name>/data.pkl` pickles the module tree, and each
tensor's bytes lie in `<name>/data/<key>`. Unpickling runs whatever globals the pickle names,
so `read_module` resolves only an allow-list (the tensor rebuild function, float storages,
`collections.OrderedDict`, TorchScript's int-list builder) and turns every `__torch__.*` class
into an inert `ScriptObject` holding its attributes. Any other global (`os.system`, say) is
refused with an `UnsafeArchiveError` before anything runs.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile

import numpy as np

# Storage types this reader knows, with the numpy dtype of their little-endian bytes.
_STORAGES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


class ArchiveError(ValueError):
    """The file is not a readable TorchScript archive."""


class UnsafeArchiveError(ArchiveError):
    """The archive's pickle names a global outside the allow-list."""


class ScriptObject:
    """A TorchScript module or object: its class name and its pickled attributes."""

    def __init__(self, *args):
        if args:
            raise UnsafeArchiveError("a TorchScript object was built with arguments, which this reader never runs")

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise UnsafeArchiveError("a TorchScript object's state is not a dict of attributes")
        self.__dict__["attributes"] = state

    def __getattr__(self, name):
        try:
            return self.__dict__["attributes"][name]
        except KeyError:
            raise AttributeError(name) from None

    def children(self) -> list[tuple[str, "ScriptObject"]]:
        """(name, sub-module) pairs in the order the archive lists them (the modules' creation order)."""
        return [(k, v) for k, v in self.__dict__.get("attributes", {}).items() if isinstance(v, ScriptObject)]


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    del requires_grad, hooks, metadata
    itemsize = storage.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    ).copy()


def _build_intlist(values):
    return list(values)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self._archive, self._prefix = archive, prefix
        self._classes: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__"):
            qualified = f"{module}.{name}"
            if qualified not in self._classes:
                self._classes[qualified] = type(name, (ScriptObject,), {"torch_class": qualified})
            return self._classes[qualified]
        allowed = {
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch.jit._pickle", "build_intlist"): _build_intlist,
            ("collections", "OrderedDict"): collections.OrderedDict,
        }
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == "torch" and name in _STORAGES:
            return name
        raise UnsafeArchiveError(f"the archive's pickle asks for {module}.{name}, which a weight file never needs")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[1] in _STORAGES):
            raise UnsafeArchiveError(f"the archive's pickle refers to {pid!r}, which is not a tensor storage")
        _, storage, key, _, numel = pid
        try:
            raw = self._archive.read(f"{self._prefix}/data/{key}")
        except KeyError:
            raise ArchiveError(f"the archive has no data/{key} for one of its tensors") from None
        array = np.frombuffer(raw, dtype=np.dtype(_STORAGES[storage]).newbyteorder("<"))
        if array.size < numel:
            raise ArchiveError(f"data/{key} holds {array.size} values where the pickle expects {numel}")
        return array


def read_module(path) -> ScriptObject:
    """The root module of the TorchScript archive `path` (a file name or a binary file object),
    with every tensor as a numpy array.

    Raises UnsafeArchiveError for a pickle that names anything but the allow-listed globals,
    ArchiveError for a file that is not such an archive.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise ArchiveError("it holds no single <name>/data.pkl, so it is not a TorchScript archive")
            prefix = pickles[0].split("/")[0]
            root = _Unpickler(archive.read(pickles[0]), archive, prefix).load()
    except zipfile.BadZipFile as e:
        raise ArchiveError(f"it is not a zip archive ({e})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
        if isinstance(e, ArchiveError):
            raise
        raise ArchiveError(f"its pickle is damaged ({type(e).__name__}: {e})") from None
    if not isinstance(root, ScriptObject):
        raise ArchiveError("its pickle does not hold a TorchScript module")
    return root
