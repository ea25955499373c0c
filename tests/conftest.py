import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from vae_jax.cli import enable_compilation_cache  # noqa: E402

enable_compilation_cache()
