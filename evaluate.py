"""Honest numbers for a trained VAE: python evaluate.py --ckpt checkpoints/  (the same as `vae-jax-evaluate`)."""

from vae_jax.commands.evaluate import main

if __name__ == "__main__":
    main()
