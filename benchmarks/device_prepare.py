"""Here, where TensorFlow is: what benchmarks/device_check.py needs on a GPU host without it.

    python -m benchmarks.device_prepare          # then: see benchmarks/device_check.sh

The lent GPU host has jax, flax, optax, orbax, Pillow and PyTorch, but no TensorFlow, no
tensorflow-datasets, no grain and no network. This writes two git-ignored folders that travel
with the call (the `carry` of the device tool, 64 MiB with the working tree):

  .whl/          wheels of what the grain reader and the configs need there (Python 3.12,
                 without their dependencies: the host has the rest)
  .device_data/  array_record copies of the datasets the check reads, and `prepared.json`,
                 which names each one's folder (config.data.prepared there)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.device_runs import RUNS, load

ROOT = Path(__file__).resolve().parents[1]

WHEELS = Path(ROOT, ".whl")
DATA = Path(ROOT, ".device_data")
# Pinned as in constraints.txt; absent from the GPU host's image (device/KINDS.md's list).
BINARY = (
    "grain==0.2.18",
    "array_record==0.8.6",
    "tensorflow-datasets==4.9.10",
    "ml_collections==1.1.0",
    "dm-tree==0.1.10",
    "immutabledict==4.3.1",
    "simple-parsing==0.1.9",
    "docstring_parser==0.18.0",
    "tensorflow-metadata==1.21.0",
    "googleapis-common-protos==1.76.0",
    "termcolor==3.3.0",
    "toml==0.10.2",
    "tensorboardX==2.6.5",
    "portpicker==1.6.0",
    "six==1.17.0",
)
SOURCE_ONLY = ("promise==2.3",)  # published as a source archive: built into a wheel here
PLATFORMS = [f"manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34)] + ["manylinux2014_x86_64"]


def wheels() -> None:
    shutil.rmtree(WHEELS, ignore_errors=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run(
        [*pip, "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12"]
        + ["--implementation", "cp", *platforms, "-d", str(WHEELS), *BINARY],
        check=True,
    )
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(WHEELS), *SOURCE_ONLY], check=True)


def data() -> dict[str, str]:
    """Each run's dataset prepared in array_record format under .device_data; run -> its folder."""
    from jaxvision.data import grain_pipeline

    found = {}
    for name, (spec, run, overrides) in RUNS.items():
        config = load(spec, run, overrides)
        config.data.data_dir = str(DATA)
        folder = Path(grain_pipeline.prepared_dir(config.data))
        found[name] = str(folder.relative_to(ROOT))
    return found


def main() -> None:
    wheels()
    prepared = data()
    shutil.rmtree(DATA / "array_record" / "downloads", ignore_errors=True)  # not read there
    (DATA / "prepared.json").write_text(json.dumps(prepared, indent=1))
    size = sum(f.stat().st_size for d in (WHEELS, DATA) for f in d.rglob("*") if f.is_file())
    print(f"{WHEELS.name}/ and {DATA.name}/ ready: {size / 2**20:.1f} MiB to carry; prepared: {prepared}")
    if size > 60 * 2**20:
        print("Over 60 MiB: with the working tree that passes the device tool's 64 MiB.", file=sys.stderr)


if __name__ == "__main__":
    main()
