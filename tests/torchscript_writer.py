"""Writes TorchScript-format archives without torch, opcode by opcode, for the reader's tests.

The pickle is laid out as `torch.jit.save` lays it out (protocol 2): each module a `__torch__.*`
global built with NEWOBJ and filled with BUILD, each tensor a `torch._utils._rebuild_tensor_v2`
call on a persistent storage id ('storage', torch.FloatStorage, key, 'cpu', numel), its bytes in
`<name>/data/<key>`.
"""

from __future__ import annotations

import pickle
import struct
import zipfile

import numpy as np


def text(s: str) -> bytes:
    b = s.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(b)) + b


def integer(i: int) -> bytes:
    return pickle.BININT + struct.pack("<i", i)


def global_(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def ints(values) -> bytes:
    return pickle.MARK + b"".join(integer(v) for v in values) + pickle.TUPLE if len(values) else pickle.EMPTY_TUPLE


class Archive:
    """Tensors and modules of one archive; `write(path, root)` saves it."""

    def __init__(self, name: str = "out_jit_module"):
        self.name, self.storages = name, {}

    def tensor(self, array: np.ndarray, storage: str = "FloatStorage") -> bytes:
        array = np.ascontiguousarray(array, np.float32)
        key = str(len(self.storages))
        self.storages[key] = array.astype("<f4").tobytes()
        strides = [int(np.prod(array.shape[i + 1 :])) for i in range(array.ndim)]
        persistent = (
            pickle.MARK
            + text("storage")
            + global_("torch", storage)
            + text(key)
            + text("cpu")
            + integer(array.size)
            + pickle.TUPLE
            + pickle.BINPERSID
        )
        return (
            global_("torch._utils", "_rebuild_tensor_v2")
            + pickle.MARK
            + persistent
            + integer(0)
            + ints(array.shape)
            + ints(strides)
            + pickle.NEWFALSE
            + global_("collections", "OrderedDict")
            + pickle.EMPTY_TUPLE
            + pickle.REDUCE
            + pickle.TUPLE
            + pickle.REDUCE
        )

    @staticmethod
    def module(cls: str, attributes: list[tuple[str, bytes]]) -> bytes:
        """A `__torch__.<module> <Class>` object (`cls` = 'module.path Class') with these attributes."""
        module, name = cls.split(" ")
        body = b"".join(text(k) + v for k, v in attributes)
        return (
            global_(f"__torch__.{module}", name)
            + pickle.EMPTY_TUPLE
            + pickle.NEWOBJ
            + pickle.EMPTY_DICT
            + (pickle.MARK + body + pickle.SETITEMS if attributes else b"")
            + pickle.BUILD
        )

    def write(self, path, root: bytes) -> None:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
            z.writestr(f"{self.name}/data.pkl", pickle.PROTO + b"\x02" + root + pickle.STOP)
            z.writestr(f"{self.name}/version", "3\n")
            for key, data in self.storages.items():
                z.writestr(f"{self.name}/data/{key}", data)


def conv_layer(archive: Archive, weight: np.ndarray, value: float) -> bytes:
    """A `Conv2dLayer` of the 2015 network: OIHW weight, beta, mean and var of its batch norm."""
    out = weight.shape[0]
    return Archive.module(
        "inceptionv3 Conv2dLayer",
        [
            ("training", pickle.NEWFALSE),
            ("weight", archive.tensor(weight)),
            ("beta", archive.tensor(np.full(out, value + 0.25))),
            ("mean", archive.tensor(np.full(out, value + 0.5))),
            ("var", archive.tensor(np.full(out, value + 0.75))),
            ("stride", integer(1)),
            ("padding", integer(0)),
        ],
    )


def inception_archive(path, kernel_shapes: list[tuple[int, ...]], patterned=(0,)) -> None:
    """A 2015-InceptionV3-like archive whose k-th conv layer (creation order) has the OIHW
    transpose of the k-th HWIO shape: weight k everywhere, except the layers in `patterned`,
    whose weights count up (so a wrong transpose shows), batch norm k + 0.25 / 0.5 / 0.75.
    The layers sit in nested modules, as the real archive's blocks and towers do."""
    archive = Archive()
    layers = []
    for k, (h, w, i, o) in enumerate(kernel_shapes):
        weight = (
            np.arange(o * i * h * w, dtype=np.float32).reshape(o, i, h, w)
            if k in patterned
            else np.full((o, i, h, w), float(k), np.float32)
        )
        layers.append(conv_layer(archive, weight, float(k)))
    # stem convs directly in `layers`, then blocks of towers, like the real module tree
    children = [(f"conv_{k}", layer) for k, layer in enumerate(layers[:5])]
    rest = layers[5:]
    for b in range(0, len(rest), 9):
        towers = [
            (
                f"tower_{t}",
                Archive.module(
                    "torch.nn.modules.container Sequential",
                    [(f"conv_{j}", rest[b + t * 3 + j]) for j in range(3) if b + t * 3 + j < len(rest)],
                ),
            )
            for t in range(3)
            if b + t * 3 < len(rest)
        ]
        children.append((f"mixed_{b // 9}", Archive.module("inceptionv3 InceptionA", towers)))
    sequential = Archive.module("torch.nn.modules.container Sequential", [("training", pickle.NEWFALSE)] + children)
    net = Archive.module("inceptionv3 InceptionV3", [("layers", sequential)])
    archive.write(path, Archive.module("wrap_net WrapNet", [("net", net)]))
