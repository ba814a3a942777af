"""Can the input pipeline keep up? Each dataset's training pipeline (images/s, measured by
`benchmarks/data_pipeline.py`) against what the training step of the model it feeds consumes.

    python -m benchmarks.pipeline_rate EPOCHS      prints JSON {pipeline: {...}}, needs TensorFlow

Run by run.py in its own process, so TensorFlow never enters a timing process.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

# pipeline (a data_pipeline.cases() name prefix) -> the benchmarked models trained on it
FEEDS = {
    "voc_segmentation": ("segmenter",),
    "voc_multilabel": ("deep_cnn", "autoencoder"),  # paper B: VOC at 128x128 RGB
    "folder: real Oxford-102": ("inception_v3",),
}


def main(epochs: int) -> None:
    from benchmarks import data_pipeline
    from benchmarks.specs import SPECS

    work = Path(tempfile.gettempdir()) / "jaxvision_data_bench"
    work.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in data_pipeline.cases(work).items():
        models = next((m for prefix, m in FEEDS.items() if name.startswith(prefix)), None)
        if models is None:
            continue
        r = data_pipeline.measure(data, work, epochs, SPECS[models[0]].batch)
        out[name] = {"models": models, "images_per_s": r["images_per_s"], "images_per_cpu_s": r["images_per_cpu_s"]}
        print(f"  {name}: {r['images_per_s']:.0f} images/s", file=sys.stderr, flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main(int(sys.argv[1]))
