"""The per-shape convolution benchmark: the shapes it reads from a model and how its table adds
them up. No timing; the old im2col rules it is compared with still compute XLA's convolution."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks import alternatives, conv_shapes
from jaxvision.models import cpu_conv, layers


def test_shapes_are_read_from_the_model_with_their_counts_and_the_model_is_left_as_it_was():
    shapes = conv_shapes.model_shapes("segmenter", 2)
    assert sum(n for *_, n in shapes) == 8 and len(shapes) == 8  # 4 encoder + 3 decoder + logits
    first, last = shapes[0], shapes[-1]
    assert first[:3] == ((2, 64, 64, 1), (3, 3, 1, 256), (1, 1)) and last[1] == (3, 3, 128, 1)
    assert layers.conv_general_dilated is cpu_conv.conv_general_dilated  # the tracing patch is undone


def _timing(w, ms, count=1):
    """One shape's rows of the two workers; ms[pass] = its (Eigen, YNNPACK, rewrite) milliseconds."""

    def row(times):
        return {
            "x": [2, 8, 8, w[2]],
            "w": list(w),
            "strides": [1, 1],
            "padding": [[1, 1], [1, 1]],
            "count": count,
            "ms": times,
        }

    eigen = {f"{p} XLA": t[0] for p, t in ms.items()} | {f"{p} rewrite": t[2] for p, t in ms.items()}
    return {"Eigen": row(eigen), "YNNPACK": row({f"{p} XLA": t[1] for p, t in ms.items()})}


def test_the_table_weighs_each_shape_by_its_count_and_names_the_fastest():
    # Two shapes: a 3x3 64->64 layer three times (XLA's everywhere) and a logits layer (rewritten).
    # Each pass's milliseconds as (Eigen, YNNPACK, rewrite).
    same = (1.0, 1.0, 1.0)
    a = _timing((3, 3, 64, 64), {"forward": (10, 20, 30), "input grad": same, "kernel grad": (5, 50, 8)}, count=3)
    b = _timing((3, 3, 64, 1), {"forward": (9, 4, 2), "input grad": same, "kernel grad": (7, 9, 3)})
    timings = {k: [a[k], b[k]] for k in conv_shapes.KERNELS}
    text = conv_shapes.table("segmenter", 2, True, timings)
    rows = [line for line in text.splitlines() if line.startswith("| 8x8x64")]
    assert rows[0].split(" | ")[5:10] == ["10.0", "20.0", "30.0", "Eigen", "Eigen"]
    assert rows[1].split(" | ")[5:10] == ["9.0", "4.0", "2.0", "rewrite", "rewrite"]
    totals = {line.split(" | ")[0]: line.split(" | ")[1:] for line in text.splitlines() if line.startswith("| ")}
    # forward: Eigen 3*10+9, YNNPACK 3*20+4, rewrite 3*30+2, as is 3*10+2, fastest 3*10+2
    assert totals["| forward"] == ["39", "64", "92", "32", "32 |"]
    assert totals["| kernel grad"] == ["22", "159", "27", "18", "18 |"]


def test_onednns_column_is_summed_beside_but_never_picked_as_the_fastest():
    # oneDNN is faster than everything on the first shape, but jaxvision cannot run it.
    a = _timing((3, 3, 64, 64), {"forward": (10, 20, 30)}, count=3)
    b = _timing((3, 3, 64, 1), {"forward": (9, 4, 2)})
    timings = {k: [a[k], b[k]] for k in conv_shapes.KERNELS}
    timings[conv_shapes.ONEDNN] = [{"ms": {"forward oneDNN": 4.0}}, {"ms": {"forward oneDNN": 5.0}}]
    text = conv_shapes.table("segmenter", 2, False, timings)
    first = next(line for line in text.splitlines() if line.startswith("| 8x8x64"))
    assert first.split(" | ")[8:] == ["Eigen", "Eigen", "4.0 |"]  # as is, fastest, oneDNN
    forward = next(line for line in text.splitlines() if line.startswith("| forward"))
    # as is 3*10+2 = 32; oneDNN 3*4+5 = 17; 32/17 = 1.88
    assert forward.split(" | ")[1:] == ["39", "64", "92", "32", "32", "17", "1.88 |"]


def test_the_earlier_im2col_rules_still_compute_xlas_convolution(monkeypatch):
    # float64, the same sums in another order: 1e-12.
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.key(0), (2, 9, 9, 6), jnp.float64)
        w = jax.random.normal(jax.random.key(1), (3, 3, 6, 5), jnp.float64)
        pads = ((0, 0), (0, 0))
        kinds = alternatives.lowering_im2col(w.shape, (2, 2), pads)
        assert kinds["forward"] == "im2col" and kinds["kernel grad"] == "matmul"
        monkeypatch.setattr(cpu_conv, "lowering", alternatives.lowering_im2col)  # as the ablation does
        conv = cpu_conv._cpu_conv.__wrapped__((2, 2), pads, None, w.shape)  # not the cached rules
        xla = lambda x, w: lax.conv_general_dilated(x, w, (2, 2), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        g = jax.random.normal(jax.random.key(2), xla(x, w).shape, jnp.float64)
        np.testing.assert_allclose(conv(x, w), xla(x, w), rtol=1e-12, atol=1e-12)
        for a, b in zip(jax.vjp(conv, x, w)[1](g), jax.vjp(xla, x, w)[1](g)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
