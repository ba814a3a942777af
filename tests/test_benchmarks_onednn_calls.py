"""benchmarks/onednn_calls.py reads oneDNN's log of the logged steps only, per pass and window."""

import pytest

from benchmarks import onednn_calls

LOG = """\
onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,backward_weights,src:f32,,alg:convolution_direct,mb16_ic3oc32_ih299oh149kh3sh2dh0ph0_iw299ow149kw3sw2dw0pw0,99.0
ONEDNN_CALLS_BEGIN
onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,backward_weights,src:f32,,alg:convolution_direct,mb16_ic3oc32_ih299oh149kh3sh2dh0ph0_iw299ow149kw3sw2dw0pw0,4.5
onednn_verbose,v1,primitive,exec,cpu,convolution,jit_1x1:avx512_core,backward_weights,src:f32,,alg:convolution_direct,mb16_ic64oc80_ih73oh73kh1sh1dh0ph0_iw73ow73kw1sw1dw0pw0,2.0
onednn_verbose,v1,primitive,exec,cpu,convolution,jit_1x1:avx512_core,backward_weights,src:f32,,alg:convolution_direct,mb16_ic64oc80_ih73oh73kh1sh1dh0ph0_iw73ow73kw1sw1dw0pw0,3.0
onednn_verbose,v1,primitive,create:cache_hit,cpu,convolution,jit_1x1:avx512_core,backward_weights,src:f32,,,mb16_ic64oc80_ih73oh73kh1sh1dh0ph0_iw73ow73kw1sw1dw0pw0,0.01
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:cdba,,,3x3x32x64,0.5
onednn_verbose,v1,primitive,exec,cpu,gemm_api,,undef,src:f32,,,m16n2048k1000,0.25
ONEDNN_CALLS_END 2.5
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:cdba,,,3x3x32x64,7.0
"""


def test_only_the_logged_steps_count_and_windows_are_told_apart():
    calls, seconds = onednn_calls.parse(LOG)
    assert seconds == 2.5
    assert calls[("convolution", "backward_weights", "other")][:2] == [1, 4.5]
    assert calls[("convolution", "backward_weights", "1x1")][:2] == [2, 5.0]
    assert calls[("reorder", "undef", "")][:2] == [1, 0.5]
    assert calls[("gemm_api", "undef", "")][2] == {"-"}
    assert len(calls) == 4  # the primitive created (not executed) is not a call


def test_the_table_gives_per_step_sums_of_both_sides():
    parsed = onednn_calls.parse(LOG)
    text = onednn_calls.table({"jaxvision": parsed, "torch": parsed}, steps=2)
    assert "| convolution | backward_weights | 1x1 | 1 | 2.5 | jit_1x1:avx512_core |" in text
    assert "| all oneDNN calls |  |  |  | 5.1 |  |  | 5.1 |  |" in text
    assert "| the step (wall clock) |  |  |  | 2500 |  |" in text


def test_without_onednn_one_sentence_says_what_to_install(monkeypatch):
    from jaxvision.models import onednn_conv

    monkeypatch.setattr(onednn_conv, "_prefix", lambda: "/nonexistent")
    with pytest.raises(SystemExit, match=r"cannot run here: oneDNN is not installed .*pip install"):
        onednn_calls.main([])
