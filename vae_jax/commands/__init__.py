"""The command-line tools: `vae-jax-train`, `vae-jax-sample` and `vae-jax-evaluate` (the same as
`python train.py`, `python sample.py` and `python evaluate.py` in the repository). Each parses
its flags and calls the package; none holds logic a notebook user would need."""
