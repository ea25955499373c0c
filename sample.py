"""Pictures from a trained VAE: python sample.py --ckpt checkpoints/  (the same as `vae-jax-sample`)."""

from vae_jax.commands.sample import main

if __name__ == "__main__":
    main()
