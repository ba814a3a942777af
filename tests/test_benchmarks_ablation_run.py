"""benchmarks/ablation_run.py refuses what it cannot apply before any training starts."""

import sys

import pytest

from benchmarks import ablation_run


@pytest.mark.parametrize(
    "run, variant, message",
    [
        ("no_such_run", '{"batch_norm": "two_pass"}', "has no run 'no_such_run'"),
        ("deep_cnn", '{"devices": 2}', "only the layer swaps"),
        ("deep_cnn", '{"batch_norm": "x"}', "Variant batch_norm='x' is not one of ['two_pass', 'one_pass']."),
    ],
)
def test_refuses_unknown_run_variant_or_value(monkeypatch, capsys, run, variant, message):
    argv = ["ablation_run", "experiments/quickstart.py", run, variant, "--workdir", "unused"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        ablation_run.main()
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
