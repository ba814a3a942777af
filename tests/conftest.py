"""Test setup: 4 simulated CPU devices (so pmap paths really run on several), Keras on JAX."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", "")
    else os.environ["XLA_FLAGS"]
)
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["JAXVISION_OFFLINE"] = "1"  # no test downloads ImageNet weights
os.environ.pop("JAXVISION_ONEDNN", None)  # the tests check the default path; test_onednn_conv sets it itself
