"""The benchmark's timing tables (benchmarks/throughput.py's `timing_table`, used by run.py's
training and inference tables and by the ablations and flags sections). No timing."""

from benchmarks import ablation_section, run
from benchmarks.throughput import Case, Result


def _result(label: str, framework: str, rates=(), cpu_rates=(), error: str = "") -> Result:
    found = Result(Case(label, framework, "segmenter", batch=8), list(rates), list(cpu_rates), error=error)
    found.info = {"first_step_s": 2.5}
    return found


def test_a_row_per_case_right_aligned_numbers_and_failures_in_the_first_number_column():
    results = [
        _result("as is", "jaxvision", [10.0, 12.0, 11.0], [4.0, 4.0]),
        _result("XLA's convolutions", "jaxvision", error="it broke"),
        _result("reshape", "jaxvision", [22.0, 22.0], [6.0, 6.0]),
    ]
    lines = ablation_section.ablation_table("segmenter", results).splitlines()
    assert lines[1] == "## CPU-gap ablations: segmenter, batch 8"
    assert lines[3] == "| variant | images/s (median) | min-max | / as is | images per CPU-s | / as is (CPU) |"
    assert lines[4] == "|---|---:|---:|---:|---:|---:|"
    assert lines[5:] == [
        "| as is | 11.00 | 10.00-12.00 | 1.00 | 4.00 | 1.00 |",
        "| XLA's convolutions | failed: it broke | | | | |",
        "| reshape | 22.00 | 22.00-22.00 | 2.00 | 6.00 | 1.50 |",
    ]


def test_the_throughput_table_divides_each_model_by_its_jaxvision_case():
    results = [
        _result("jaxvision", "jaxvision", [10.0], [5.0]),
        _result("PyTorch NCHW", "torch", [20.0], [4.0]),
        _result("Keras 3 (JAX)", "keras", error="no memory"),
    ]
    rows = run.throughput_table(results, "Training step").splitlines()[5:]
    assert rows == [
        "| segmenter | jaxvision | 8 | 10.00 | 10.00-10.00 | 1.00 | 5.00 | 1.00 | | 2.5 |",
        "| segmenter | PyTorch NCHW | 8 | 20.00 | 20.00-20.00 | 0.50 | 4.00 | 1.25 | | 2.5 |",
        "| segmenter | Keras 3 (JAX) | 8 | failed: no memory | | | | | | |",
    ]
