"""jaxvision: pure-functional JAX/Flax vision research code."""

from jaxvision import cpu_flags, quiet

cpu_flags.install()  # before any backend starts: XLA reads its flags once
quiet.install()
