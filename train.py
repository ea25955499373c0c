"""Train a VAE: python train.py --dataset mnist  (the same as `vae-jax-train`; --help lists every flag)."""

from vae_jax.commands.train import main

if __name__ == "__main__":
    main()
