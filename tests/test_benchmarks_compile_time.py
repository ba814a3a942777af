"""benchmarks/compile_time's list of every experiment's training steps, and one of them compiled."""

import json

from benchmarks import compile_time
from benchmarks.throughput import run_child


def test_every_experiment_run_that_trains_a_network_is_listed_once_under_the_step_it_shares():
    steps = compile_time.experiment_steps()
    runs = [run for shared in steps.values() for run in shared]
    assert len(runs) == len(set(runs))
    # The quickstart is its file's default, which its VARIANTS leave out.
    assert "experiments/quickstart.py/dice" in runs
    # PCA, the prior baselines and heads on cached features compile no network step.
    assert not {"experiments/quickstart.py/pca", "experiments/quickstart.py/baselines"} & set(runs)
    assert not {"experiments/quickstart.py/imagenet", "experiments/quickstart.py/frozen_encoder"} & set(runs)
    # Table 2's deep CNN is its own variant's program; the quickstart's, at 64x64, is another.
    (deep_cnn,) = [shared for shared in steps.values() if "experiments/voc_classifier.py:deep_cnn" in shared]
    assert "experiments/voc_classifier.py:table2/deep_cnn" in deep_cnn
    assert "experiments/quickstart.py/deep_cnn" not in deep_cnn
    # BCE and CE on the same network are two programs.
    (ce,) = [shared for shared in steps.values() if "experiments/flowers_inception.py:ce" in shared]
    assert "experiments/flowers_inception.py:bce_softmax" not in ce


def test_an_experiment_step_compiles_at_its_own_size_with_its_task_batch():
    proc = run_child("-m", "benchmarks.compile_time", "--one", "experiments/quickstart.py/dice:0", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["size"] == 64  # the quickstart's segmenter, not the size argument
    assert result["compile_s"] > 0 and result["instructions"] > 0
