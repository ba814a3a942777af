"""The flags section of the benchmark: which cases it builds and how its table reads them. No timing."""

from benchmarks import flags_section
from benchmarks.throughput import Result


def test_every_flag_set_is_a_case_beside_the_default_and_the_reference():
    cases = flags_section.flag_cases("deep_cnn", "train", None)
    labels = [c.label for c in cases]
    assert labels[0] == "default" and cases[0].xla_flags == "" and cases[0].variant == {}
    jaxvision = [c for c in cases if c.framework == "jaxvision"]
    assert len(jaxvision) == len(flags_section.FLAG_SETS)
    assert all(c.model == "deep_cnn" and c.mode == "train" for c in cases)
    chosen = flags_section.flag_cases(
        "inception_v3", "infer", 16, labels="oneDNN dots,XLA's default,XLA's default + oneDNN dots"
    )
    assert [c.label for c in chosen if c.framework == "jaxvision"] == [
        "default",
        "XLA's default",
        "oneDNN dots",
        "XLA's default + oneDNN dots",
    ]


def test_the_table_divides_by_the_default_and_by_pytorch():
    default, onednn, torch = (
        Result(flags_section.flag_cases("deep_cnn", "train", None, labels="oneDNN dots")[i]) for i in (0, 1, -1)
    )
    default.images_per_s, onednn.images_per_s = [10.0, 12.0, 11.0], [13.2, 13.2, 13.2]
    torch.images_per_s = [22.0, 22.0]
    if torch.case.label != flags_section.REFERENCE:  # PyTorch is not installed: no reference column
        torch = None
    table = flags_section.flag_table("deep_cnn", "train", [r for r in (default, onednn, torch) if r])
    row = next(line for line in table.splitlines() if line.startswith("| oneDNN dots |"))
    assert "| 13.20 | 13.20-13.20 | 1.20 |" in row and f"`{flags_section.ONEDNN_DOT}`" in row
    if torch:
        assert row.endswith("| 0.60 |")


def test_small_pages_time_both_frameworks_and_the_ratio_takes_the_fastest_pytorch():
    cases = flags_section.flag_cases("segmenter", "train", 8, labels="4 KiB pages")
    small = [c for c in cases if c.env == flags_section.SMALL_PAGES]
    assert [c.framework for c in small] == ["jaxvision"] + (["torch"] if len(cases) > 2 else [])
    assert all(c.batch == 8 for c in cases) and cases[0].env == {}
    results = [Result(c) for c in cases]
    for r, rate in zip(results, (10.0, 9.0, 20.0, 25.0)):
        r.images_per_s = [rate]
    table = flags_section.flag_table("segmenter", "train", results)
    row = next(line for line in table.splitlines() if line.startswith("| default |"))
    assert row.endswith("| 0.40 |" if len(cases) > 2 else "| |")
