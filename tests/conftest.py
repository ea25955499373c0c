from vae_jax.cli import enable_compilation_cache

enable_compilation_cache()
