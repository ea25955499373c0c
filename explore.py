"""Explore a trained VAE in the browser: python explore.py --ckpt DIR  (the same as `vae-jax-explore`)."""

from vae_jax.commands.explore import main

if __name__ == "__main__":
    main()
