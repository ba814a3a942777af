"""jaxvision: pure-functional JAX/Flax vision research code."""
