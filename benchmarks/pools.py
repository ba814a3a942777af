"""InceptionV3's pools alone, jaxvision's CPU versions against XLA's `reduce_window`.

    python -m benchmarks.pools [--batch 16] [--repeats 5]

Times, at each shape InceptionV3 pools at (299x299 input), the 3x3/2 max pool's forward
(`layers.max_pool_forward` against flax's `nn.max_pool`) and the 3x3 'SAME' average pool's
forward and forward + backward (`layers.avg_pool3` against flax's `nn.avg_pool`), each jitted,
median milliseconds of `--repeats` calls, and the largest difference of their values.
"""

from __future__ import annotations

import argparse

MAX_POOLS = ((147, 147, 64), (71, 71, 192), (35, 35, 288), (17, 17, 768))
AVG_POOLS = ((35, 35, 288), (17, 17, 768), (8, 8, 2048))


def rows(batch: int, repeats: int) -> list[tuple]:
    import jax
    import jax.numpy as jnp

    from benchmarks import alternatives
    from benchmarks.flops import median_seconds
    from jaxvision.models import layers

    def ms(fn, x):
        return f"{1e3 * median_seconds(lambda: jax.block_until_ready(fn(x)), repeats):.1f}"

    def gap(f, g, x):
        return f"{float(jnp.max(jnp.abs(f(x) - g(x)))):.1e}"

    found = []
    for h, w, c in MAX_POOLS:
        x = jax.random.normal(jax.random.key(0), (batch, h, w, c))
        ours, theirs = (
            jax.jit(lambda x, f=f: f(x, (3, 3), (2, 2)))
            for f in (layers.max_pool_forward, alternatives.max_pool_reduce_window)
        )
        found.append(("3x3/2 max pool, forward", f"{h}x{h}x{c}", ms(theirs, x), ms(ours, x), gap(ours, theirs, x)))
    for h, w, c in AVG_POOLS:
        x = jax.random.normal(jax.random.key(0), (batch, h, w, c))
        pair = (layers.avg_pool3, alternatives.avg_pool3_reduce_window)
        ours, theirs = (jax.jit(f) for f in pair)
        found.append(("3x3 avg pool, forward", f"{h}x{h}x{c}", ms(theirs, x), ms(ours, x), gap(ours, theirs, x)))
        ours, theirs = (jax.jit(jax.grad(lambda x, f=f: jnp.sum(f(x) ** 2))) for f in pair)
        found.append(
            ("3x3 avg pool, forward + backward", f"{h}x{h}x{c}", ms(theirs, x), ms(ours, x), gap(ours, theirs, x))
        )
    return found


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from benchmarks.throughput import markdown_table

    columns = ("op", "shape", "reduce_window ms:", "strided / shifted views ms:", "largest difference:")
    title = f"InceptionV3's pools alone, batch {args.batch} (median of {args.repeats})"
    print(markdown_table(title, columns, rows(args.batch, args.repeats)))


if __name__ == "__main__":
    main()
