"""The von Mises-Fisher distribution on the unit sphere S^{m-1} in R^m, and the uniform one there
(Davidson et al. 2018, "Hyperspherical Variational Auto-Encoders", arXiv:1804.00891).

    vMF(z; mu, kappa) = C_m(kappa) exp(kappa mu.z)
    log C_m(kappa) = (m/2 - 1) log kappa - (m/2) log 2 pi - log I_{m/2-1}(kappa)

I_v is the modified Bessel function of the first kind. Its logarithm is computed in float64 on the
host (scipy's exponentially scaled `ive`), where float32 would underflow or overflow, with the
derivative d/dx log I_v(x) = I_{v+1}(x) / I_v(x) + v / x. Draws follow Wood (1994): w = mu.z by
rejection from a Beta proposal, the rest uniform on the sphere orthogonal to mu (a Householder
reflection takes e_1 to mu). The gradient of an expectation reaches kappa through w(eps, kappa) at
the accepted proposal eps, and, through `score`, the correction of Naesseth et al. (2017) for the
acceptance depending on kappa. Shapes: z, mu (..., m); kappa (...,).
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special

MAX_PROPOSALS = 1000  # rejection rounds at most (the acceptance rate is above 0.5 for every m and kappa)


def _log_ive_host(v: float, n: int, x: np.ndarray) -> np.ndarray:
    """log ive of orders v, v + 1, ..., v + n - 1 at x, in float64: x.shape + (n,), in x's dtype."""
    x64 = np.asarray(x, np.float64)[..., None]
    orders = v + np.arange(n)
    scaled = scipy.special.ive(orders, x64)
    # where ive underflows (x far below v): the series' first term, (x / 2)^v / Gamma(v + 1), scaled
    small = orders * np.log(np.maximum(x64, 1e-300) / 2) - scipy.special.gammaln(orders + 1) - x64
    out = np.where(scaled > 0, np.log(np.maximum(scaled, 1e-300)), small)
    return out.astype(np.asarray(x).dtype)


def _host(v: float, n: int, x: jax.Array) -> jax.Array:
    """One call to the host for the orders v .. v + n - 1: x.shape + (n,)."""
    shape = jax.ShapeDtypeStruct((*jnp.shape(x), n), jnp.result_type(x))
    return jax.pure_callback(lambda a: _log_ive_host(v, n, a), shape, x, vmap_method="broadcast_all")


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def log_ive_pair(v: float, x: jax.Array) -> jax.Array:
    """(log ive_v(x), log ive_{v+1}(x)), log(I(x) e^{-x}), stacked on a last axis of 2: x.shape + (2,),
    for an order v >= 0 (a Python number) and x > 0, in x's dtype; small where log I(x) is large, so
    that differences keep their digits in float32. One call to the host, with or without a gradient."""
    return _host(v, 2, x)


@log_ive_pair.defjvp
def _log_ive_pair_jvp(v, primals, tangents):
    (x,), (dx,) = primals, tangents
    logs = _host(v, 3, x)  # d/dx log ive_u(x) = I_{u+1}(x) / I_u(x) + u / x - 1
    slopes = jnp.exp(logs[..., 1:] - logs[..., :2]) + (v + jnp.arange(2)) / x[..., None] - 1
    return logs[..., :2], slopes * dx[..., None]


def log_ive(v: float, x: jax.Array) -> jax.Array:
    """log(I_v(x) e^{-x}), the exponentially scaled modified Bessel function of the first kind.

    Args:
        v: the order.
        x: the arguments (...,), > 0.

    Returns:
        (...,).
    """
    return log_ive_pair(v, x)[..., 0]


def log_iv(v: float, x: jax.Array) -> jax.Array:
    """log I_v(x), the modified Bessel function of the first kind.

    Args:
        v: the order.
        x: the arguments (...,), > 0.

    Returns:
        (...,).
    """
    return log_ive(v, x) + x


def _terms(kappa: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """(log C_m(kappa) + kappa, the normalizer without its large part; log A_m(kappa)), each (...,)."""
    logs = log_ive_pair(m / 2 - 1, kappa)
    scaled = (m / 2 - 1) * jnp.log(kappa) - (m / 2) * math.log(2 * math.pi) - logs[..., 0]
    return scaled, logs[..., 1] - logs[..., 0]


def mean_resultant_length(kappa: jax.Array, m: int) -> jax.Array:
    """A_m(kappa) = E[mu.z] = I_{m/2}(kappa) / I_{m/2-1}(kappa) under vMF(mu, kappa) on S^{m-1}.

    Args:
        kappa: concentrations (...,), > 0.
        m: the dimension of the ambient space (the sphere is S^{m-1}).

    Returns:
        (...,).
    """
    return jnp.exp(_terms(kappa, m)[1])


def _log_normalizer_scaled(kappa: jax.Array, m: int) -> jax.Array:
    """log C_m(kappa) + kappa, the normalizer without its large part."""
    return _terms(kappa, m)[0]


def log_normalizer(kappa: jax.Array, m: int) -> jax.Array:
    """log C_m(kappa), the vMF density's log-normalizer on S^{m-1}.

    Args:
        kappa: concentrations (...,), > 0.
        m: the dimension of the ambient space (the sphere is S^{m-1}).

    Returns:
        (...,).
    """
    return _log_normalizer_scaled(kappa, m) - kappa


def log_prob(z: jax.Array, mu: jax.Array, kappa: jax.Array) -> jax.Array:
    """log vMF(z; mu, kappa), computed as kappa (mu.z - 1) + (log C_m + kappa).

    Args:
        z: points of the sphere (..., m).
        mu: mean directions, unit vectors (..., m).
        kappa: concentrations (...,), > 0.

    Returns:
        (...,) log-densities in nats.
    """
    return kappa * (jnp.sum(mu * z, axis=-1) - 1) + _log_normalizer_scaled(kappa, z.shape[-1])


def log_sphere_area(m: int) -> float:
    """log of the area of S^{m-1}, 2 pi^{m/2} / Gamma(m/2): minus the uniform distribution's log density.

    Args:
        m: the dimension of the ambient space (the sphere is S^{m-1}).

    Returns:
        A float.
    """
    return math.log(2) + (m / 2) * math.log(math.pi) - math.lgamma(m / 2)


def kl_to_uniform(kappa: jax.Array, m: int) -> jax.Array:
    """KL(vMF(mu, kappa) || uniform on S^{m-1}) = kappa A_m(kappa) + log C_m(kappa) + log area(S^{m-1}),
    computed as kappa (A_m - 1) + (log C_m + kappa) + log area(S^{m-1}): no large terms that cancel.

    Args:
        kappa: concentrations (...,), > 0.
        m: the dimension of the ambient space (the sphere is S^{m-1}).

    Returns:
        (...,) in nats.
    """
    scaled, log_a = _terms(kappa, m)
    return kappa * jnp.expm1(log_a) + scaled + log_sphere_area(m)


def uniform(key: jax.Array, shape: tuple[int, ...], m: int) -> jax.Array:
    """Draws uniform on S^{m-1}.

    Args:
        key: the PRNG key of the draws.
        shape: how many, as a shape.
        m: the dimension of the ambient space (the sphere is S^{m-1}).

    Returns:
        shape + (m,) unit vectors.
    """
    g = jax.random.normal(key, (*shape, m))
    return g / jnp.linalg.norm(g, axis=-1, keepdims=True)


def _wood(kappa: jax.Array, m: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Wood's (1994) constants b, a, d of the proposal, (...,); b in a form without cancellation."""
    m1 = m - 1
    root = jnp.sqrt(4 * kappa**2 + m1**2)
    b = m1 / (2 * kappa + root)
    a = (m1 + 2 * kappa + root) / 4
    d = 4 * a * b / (1 + b) - m1 * math.log(m1)
    return b, a, d


def _w(eps: jax.Array, b: jax.Array) -> jax.Array:
    return (1 - (1 + b) * eps) / (1 - (1 - b) * eps)


def accepted_proposal(key: jax.Array, kappa: jax.Array, m: int) -> jax.Array:
    """The accepted Beta((m-1)/2, (m-1)/2) proposal eps of Wood's rejection sampler for each kappa,
    without a gradient. Each element's draws depend only on `key` and its position.

    Args:
        key: the PRNG key of the proposals.
        kappa: concentrations (...,), > 0.
        m: the dimension of the ambient space (the sphere is S^{m-1}).

    Returns:
        (...,).
    """
    b, a, d = (jax.lax.stop_gradient(t) for t in _wood(kappa, m))
    half = (m - 1) / 2

    def propose(state):
        i, eps, done = state
        k_beta, k_u = jax.random.split(jax.random.fold_in(key, i))
        e = jax.random.beta(k_beta, half, half, kappa.shape, kappa.dtype)
        u = jax.random.uniform(k_u, kappa.shape, kappa.dtype, minval=1e-20)
        t = 2 * a * b / (1 - (1 - b) * e)
        accept = (m - 1) * jnp.log(t) - t + d >= jnp.log(u)
        return i + 1, jnp.where(accept & ~done, e, eps), done | accept

    def more(state):
        i, _, done = state
        return (i < MAX_PROPOSALS) & ~jnp.all(done)

    start = (jnp.int32(0), jnp.full(kappa.shape, 0.5, kappa.dtype), jnp.zeros(kappa.shape, bool))
    return jax.lax.while_loop(more, propose, start)[1]


def score(eps: jax.Array, kappa: jax.Array, m: int) -> jax.Array:
    """log pi(eps | kappa) - its value held fixed: zero, with the gradient in kappa of the log density
    of the accepted proposal, pi(eps | kappa) = q_w(w(eps, kappa)) abs(dw / deps) (Naesseth et al. 2017);
    f(z) * score added to an expectation's sample gives its gradient the correction term.

    Args:
        eps: the accepted proposals (...,) (`sample`'s second output).
        kappa: concentrations (...,), > 0.
        m: the dimension of the ambient space (the sphere is S^{m-1}).

    Returns:
        (...,) zeros.
    """
    b = _wood(kappa, m)[0]
    w = _w(eps, b)
    log_pi = (
        kappa * w
        + (m - 3) / 2 * jnp.log1p(-jnp.minimum(w**2, 1 - 1e-7))
        + log_normalizer(kappa, m)
        + jnp.log(2 * b)
        - 2 * jnp.log1p(-(1 - b) * eps)
    )
    return log_pi - jax.lax.stop_gradient(log_pi)


def householder(x: jax.Array, mu: jax.Array) -> jax.Array:
    """x reflected by the Householder reflection that takes e_1 to the unit vector mu.

    Args:
        x: vectors (..., m).
        mu: unit vectors (..., m).

    Returns:
        (..., m).
    """
    e1 = jnp.zeros(mu.shape[-1], mu.dtype).at[0].set(1)
    u = e1 - mu
    u = u / (jnp.linalg.norm(u, axis=-1, keepdims=True) + 1e-8)
    return x - 2 * jnp.sum(x * u, axis=-1, keepdims=True) * u


def sample(key: jax.Array, mu: jax.Array, kappa: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparameterised draws z ~ vMF(mu, kappa) (Davidson et al. 2018).

    Args:
        key: the PRNG key of the draws.
        mu: mean directions, unit vectors (..., m).
        kappa: concentrations (...,), > 0.

    Returns:
        (z (..., m), the accepted proposal eps (...,), for `score`).
    """
    m = mu.shape[-1]
    k_w, k_v = jax.random.split(key)
    eps = accepted_proposal(k_w, kappa, m)
    w = _w(eps, _wood(kappa, m)[0])
    v = uniform(k_v, kappa.shape, m - 1)
    x = jnp.concatenate([w[..., None], jnp.sqrt(jnp.maximum(1 - w**2, 1e-10))[..., None] * v], axis=-1)
    return householder(x, mu), eps
