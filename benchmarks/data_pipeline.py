"""Images per second of each dataset's training pipeline (host side, numpy batches).

    python -m benchmarks.data_pipeline [--work DIR] [--epochs 3] [--only shapes,voc_segmentation]

Each case prepares its data once under --work (the embedded dataset is generated, VOC is a
synthetic VOCdevkit of VOC-sized JPEGs, Flowers are the real photos in ../shared/data when
present) and then times `epochs` training epochs after the first batch (graph building), with
the settings of the experiment that uses it. Prints a markdown table; images per CPU-second
(all of the process's threads) is the figure that holds on a shared machine, images/s the
one this machine gave at its load.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from PIL import Image

from jaxvision.data import default_data_config, make_pipelines
from jaxvision.data.voc import VOC_CLASSES

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def synthetic_voc(root: Path, count: int, seed: int = 0) -> Path:
    """A VOCdevkit/VOC2009 of `count` 500x375 JPEGs with random rectangles as objects."""
    devkit = root / "VOCdevkit" / "VOC2009"
    if devkit.is_dir():
        return root
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation", "ImageSets/Main", "Annotations"):
        (devkit / sub).mkdir(parents=True)
    rng = np.random.default_rng(seed)
    ids = [f"2009_{i:06d}" for i in range(count)]
    for image_id in ids:
        h, w = (375, 500) if rng.random() < 0.7 else (500, 375)
        image = (rng.random((h // 25, w // 25, 3)) * 255).astype(np.uint8)
        image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
        mask, names = np.zeros((h, w), np.uint8), []
        for _ in range(rng.integers(1, 4)):
            k = int(rng.integers(1, 21))
            y0, x0 = rng.integers(0, h - 50), rng.integers(0, w - 50)
            y1, x1 = y0 + rng.integers(40, h - y0), x0 + rng.integers(40, w - x0)
            mask[y0:y1, x0:x1], names = 255, names + [VOC_CLASSES[k - 1]]
            mask[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3] = k
        noisy = np.clip(image.astype(np.int16) + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(devkit / "JPEGImages" / f"{image_id}.jpg", quality=90)
        Image.fromarray(mask, mode="P").save(devkit / "SegmentationClass" / f"{image_id}.png")
        objects = "".join(f"<object><name>{n}</name><difficult>0</difficult></object>" for n in names)
        (devkit / "Annotations" / f"{image_id}.xml").write_text(f"<annotation>{objects}</annotation>")
    for kind in ("Segmentation", "Main"):
        (devkit / "ImageSets" / kind / "train.txt").write_text("\n".join(ids[: count // 2]))
        (devkit / "ImageSets" / kind / "val.txt").write_text("\n".join(ids[count // 2 :]))
    return root


def cases(work: Path) -> dict[str, dict]:
    voc_root = synthetic_voc(work / "voc", 400)
    found = {
        "shapes (128x128 RGB, default sizes)": dict(name="shapes"),
        "voc_segmentation (synthetic VOC, 64x64 gray, paper B)": dict(
            name="voc_segmentation", image_size=64, grayscale=True, voc=dict(manual_dir=str(voc_root))
        ),
        "voc_multilabel (synthetic VOC, 128x128 RGB, all 20 classes)": dict(
            name="voc_multilabel", voc=dict(manual_dir=str(voc_root), classes=VOC_CLASSES)
        ),
    }
    if (SHARED / "flowers102").is_dir():
        found["folder: real Oxford-102 JPEGs (299x299, inception crop, paper A)"] = dict(
            name="folder",
            folder=dict(root=str(SHARED / "flowers102")),
            train_split="test",
            image_size=299,
            train_crop="inception",
            eval_crop="central",
            value_range=(-1.0, 1.0),
        )
    if (SHARED / "flowers17").is_dir():
        found["folder: real Flowers-17 JPEGs (224x224)"] = dict(
            name="folder", folder=dict(root=str(SHARED / "flowers17")), image_size=224
        )
    return found


def measure(data: dict, work: Path, epochs: int, batch_size: int, untimed_epochs: int = 0) -> dict[str, float]:
    """Images/s of `epochs` training epochs after the first batch (or after `untimed_epochs`
    whole epochs, e.g. those that fill a cache)."""
    config = ml_collections.ConfigDict(dict(seed=0, batch_size=batch_size, eval_batch_size=batch_size))
    config.data = default_data_config()
    config.data.update(dict(data_dir=str(work / "tfds"), prefetch_to_device=0))
    config.data.update(data)
    start, cpu = time.perf_counter(), time.process_time()
    pipelines = make_pipelines(config, devices=jax.local_devices()[:1])
    setup, setup_cpu = time.perf_counter() - start, time.process_time() - cpu
    if epochs == 0:  # preparing only
        return dict(setup_s=setup, setup_cpu_s=setup_cpu)
    images, clock, cpu = 0, None, None
    for epoch in range(untimed_epochs):
        for _ in pipelines.train(epoch):
            pass
    for epoch in range(untimed_epochs, untimed_epochs + epochs):
        for batch in pipelines.train(epoch):
            if clock is None:  # the first batch builds the graph and fills the shuffle buffer
                clock, cpu = time.perf_counter(), time.process_time()
                continue
            images += batch["image"].shape[0] * batch["image"].shape[1]
    return dict(
        setup_s=setup,
        setup_cpu_s=setup_cpu,
        images=images,
        images_per_s=images / (time.perf_counter() - clock),
        images_per_cpu_s=images / (time.process_time() - cpu),
        train_examples=pipelines.info.num_examples[config.data.train_split],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "jaxvision_data_bench"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--only", default="", help="comma-separated prefixes of case names")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f}, batch {args.batch_size}, {args.epochs} epochs, "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    print(
        "| pipeline | train examples | first call (prepare + set up): wall s | its CPU s | images/s "
        "| images per CPU-second |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, data in cases(work).items():
        if args.only and not any(name.startswith(p) for p in args.only.split(",")):
            continue
        r = measure(data, work, args.epochs, args.batch_size)
        print(
            f"| {name} | {r['train_examples']} | {r['setup_s']:.1f} | {r['setup_cpu_s']:.1f} | "
            f"{r['images_per_s']:.0f} | {r['images_per_cpu_s']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
