"""The profiler's summary by kind of op (benchmarks/profile_step.py)."""

from benchmarks.profile_step import by_kind


def test_by_kind_sums_the_numbered_ops_of_one_kind_and_counts_them():
    ops = {"ffi_call.475": 2.0, "ffi_call.3": 1.5, "add_select_fusion.3": 4.0, "copy": 0.25}
    assert by_kind(ops) == {"ffi_call": (3.5, 2), "add_select_fusion": (4.0, 1), "copy": (0.25, 1)}
