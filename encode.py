"""Your images through a trained encoder: python encode.py --images DIR  (the same as `vae-jax-encode`)."""

from vae_jax.commands.encode import main

if __name__ == "__main__":
    main()
