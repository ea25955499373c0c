"""Links to the JAX, Flax, Optax, NumPy and Python documentation from the API reference.

intersphinx reads the inventories in docs/_inventories (written by its make.py: the site builds
offline). Type hints name some classes by the module that defines them, not by the name their
documentation uses (jax.Array is jax.jaxlib._jax.Array at run time): those are looked up under
their public names.
"""

from __future__ import annotations

from sphinx.ext import intersphinx

PUBLIC_NAMES = {
    "jax.jaxlib._jax.Array": "jax.Array",
    "jaxlib._jax.Array": "jax.Array",
    "flax.linen.module.Module": "flax.linen.Module",
    "numpy.random._generator.Generator": "numpy.random.Generator",
    "np.ndarray": "numpy.ndarray",
    "np.random.Generator": "numpy.random.Generator",
    "nn.Module": "flax.linen.Module",
}


def _public(app, env, node, contnode):
    """Resolve a reference to a run-time name through its public name's inventory entry."""
    public = PUBLIC_NAMES.get(node.get("reftarget"))
    if public is None:
        return None
    node["reftarget"] = public
    return intersphinx.missing_reference(app, env, node, contnode)


def setup(app) -> dict:
    app.connect("missing-reference", _public, priority=400)
    return {"parallel_read_safe": True}
