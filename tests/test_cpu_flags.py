"""jaxvision's XLA:CPU defaults: set by `import jaxvision`, under whatever the user's XLA_FLAGS say."""

import subprocess
import sys

from jaxvision import cpu_flags

YNN = "--xla_cpu_experimental_ynn_fusion_type"


def test_a_flag_the_user_names_wins_and_the_others_stay():
    assert cpu_flags.merge("--a=1 --b=2", "--b=3 --c") == "--a=1 --b=3 --c"
    environ = {"XLA_FLAGS": f"--xla_force_host_platform_device_count=4 {YNN}=+individual_convolution"}
    cpu_flags.install(environ)
    assert environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=4 {YNN}=+individual_convolution"
    environ = {}
    cpu_flags.install(environ)
    assert environ["XLA_FLAGS"] == " ".join(cpu_flags.DEFAULTS)


_COMPILED_CONV = """
import jaxvision, jax, jax.numpy as jnp
x, w = jnp.ones((2, 16, 16, 32)), jnp.ones((3, 3, 32, 32))
conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
print("__ynn_fusion" in jax.jit(conv).lower(x, w).compile().as_text())
"""


def _sent_to_ynnpack(xla_flags: str) -> bool:
    env = {"JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags}
    out = subprocess.run([sys.executable, "-c", _COMPILED_CONV], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_importing_jaxvision_keeps_convolutions_off_ynnpack_unless_the_user_asks():
    assert not _sent_to_ynnpack("")
    assert _sent_to_ynnpack(f"{YNN}=+individual_convolution")
