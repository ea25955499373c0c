"""What the amortized flows of one-step maps share (planar, radial): `steps` steps, each a flax module
that reads the encoder's context h and maps z to (z', log |det dz'/dz|); their sum is the flow's.
A step's parameters are a dense layer of h, so each image has its own flow (amortized, as van den
Berg et al. 2018 build planar flows); the flow's own parameters are those layers'."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp


@dataclass(frozen=True)
class Steps:
    """`steps` steps of the flax module `step(latent_dim)`: (z (B, D), h (B, hidden)) -> (z', log-det (B,))."""

    latent_dim: int  # D, units of z
    steps: int  # how many steps (--flow-steps)
    hidden: int  # units of the encoder's context each step's parameters are read from (--flow-hidden)
    step: Any  # the step's flax module class
    name: str = ""  # the flow's name, for reports

    @property
    def context(self) -> int:
        return self.hidden

    @property
    def text(self) -> str:
        return f"diagonal Gaussian, then {self.steps} {self.name} flow steps (their parameters from the encoder)"

    def init(self, key: jax.Array) -> dict:
        z, h = jnp.zeros((1, self.latent_dim)), jnp.zeros((1, self.context))
        keys = jax.random.split(key, self.steps)
        return {f"step{t}": self.step(self.latent_dim).init(keys[t], z, h)["params"] for t in range(self.steps)}

    def __call__(self, params: dict, z: jax.Array, h: jax.Array) -> tuple[jax.Array, jax.Array]:
        """z_0 (B, D) and context h (B, hidden) -> (z_T (B, D), log |det dz_T/dz_0| (B,))."""
        log_det = jnp.zeros(z.shape[:1], jnp.float32)
        for t in range(self.steps):
            z, step_log_det = self.step(self.latent_dim).apply({"params": params[f"step{t}"]}, z, h)
            log_det = log_det + step_log_det
        return z, log_det

    def diagonal(self, params: dict, z: jax.Array, h: jax.Array) -> tuple[jax.Array, None]:
        """(z_T, None): the Jacobian is not triangular, so there is no per-unit scale to give."""
        return self(params, z, h)[0], None
