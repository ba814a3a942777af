"""Which cases the CPU-gap ablations section builds. No timing."""

from benchmarks import ablation_section, ablations


def test_every_variant_is_a_case_and_every_variant_is_one_ablations_accepts():
    cases = ablation_section.ablation_cases("inception_v3", 16)
    jaxvision = [c for c in cases if c.framework == "jaxvision"]
    assert [c.label for c in jaxvision] == [label for label, *_ in ablation_section.ABLATIONS["inception_v3"]]
    for case in jaxvision:
        for key, value in case.variant.items():
            allowed = ablations.CHOICES[key]
            assert allowed is None or value in allowed, (case.label, key, value)


def test_chosen_prefixes_keep_as_is_first_because_the_ratios_divide_by_it():
    cases = ablation_section.ablation_cases("inception_v3", 16, "pools,3x3 avg")
    labels = [c.label for c in cases]
    assert labels == ["as is", "3x3 avg pool: nn.avg_pool", "pools: reduce_window forwards (both)"]
    assert cases[2].variant == {"overlapping_pool": "reduce_window_forward", "avg_pool": "reduce_window"}


def test_inference_ablations_time_inference_on_one_device():
    cases = ablation_section.ablation_cases("inception_v3", 16, mode="infer")
    assert cases and all(c.mode == "infer" for c in cases)
    assert not any("devices" in c.variant for c in cases)
    assert len([c for c in cases if c.framework == "jaxvision"]) == len(ablation_section.ABLATIONS["inception_v3"]) - 1
