"""The benchmark's jaxvision step builds where TensorFlow is not installed (GPU machines).

Run in a fresh interpreter in which importing TensorFlow fails, as it would there.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
sys.modules['tensorflow'] = None        # any `import tensorflow` now raises ImportError
import jax
from benchmarks.jaxvision_side import train_step
from benchmarks.specs import SPECS
step = train_step(SPECS['segmenter'], batch=4)
step.run(2)
print(int(jax.device_get(step.state.step)[0]), 'tensorflow' in sys.modules and sys.modules['tensorflow'] is not None)
"""


def test_jaxvision_step_builds_and_steps_without_tensorflow():
    env = {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["2", "False"]
