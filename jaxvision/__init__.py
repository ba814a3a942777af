"""jaxvision: pure-functional JAX/Flax vision research code."""

from jaxvision import quiet

quiet.install()
