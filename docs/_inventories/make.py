"""Write the intersphinx inventories the API reference links with: python docs/_inventories/make.py

The site builds offline, so intersphinx reads these files instead of fetching each project's
objects.inv. Each lists the names of that project the reference shows (in type hints and
docstrings) with the address of its entry in the project's documentation. A name added to the
reference's types is added here, and the files written again.
"""

import os
import zlib

PROJECTS = {
    "python": ("Python", "https://docs.python.org/3/"),
    "numpy": ("NumPy", "https://numpy.org/doc/stable/"),
    "jax": ("JAX", "https://docs.jax.dev/en/latest/"),
    "flax": ("Flax", "https://flax.readthedocs.io/en/latest/"),
    "optax": ("Optax", "https://optax.readthedocs.io/en/latest/"),
}
ENTRIES = {  # project: [(name, role, page in its site; "$" stands for the name)]
    "python": [
        ("collections.abc.Callable", "py:class", "library/collections.abc.html#$"),
        ("collections.abc.Sequence", "py:class", "library/collections.abc.html#$"),
    ],
    "numpy": [
        ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#$"),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#$"),
    ],
    "jax": [
        ("jax.Array", "py:class", "_autosummary/jax.Array.html#$"),
        ("jax.jit", "py:function", "_autosummary/jax.jit.html#$"),
        ("jax.vmap", "py:function", "_autosummary/jax.vmap.html#$"),
        ("jax.random.key", "py:function", "_autosummary/jax.random.key.html#$"),
    ],
    "flax": [("flax.linen.Module", "py:class", "api_reference/flax.linen/module.html#$")],
    "optax": [
        ("optax.GradientTransformation", "py:class", "api/transformations.html#$"),
        ("optax.adam", "py:function", "api/optimizers.html#$"),
    ],
}


def inventory(project: str, entries: list[tuple[str, str, str]]) -> bytes:
    """An objects.inv (version 2) of `entries`."""
    header = f"# Sphinx inventory version 2\n# Project: {project}\n# Version: \n"
    header += "# The remainder of this file is compressed using zlib.\n"
    body = "".join(f"{name} {role} 1 {page} -\n" for name, role, page in entries)
    return header.encode() + zlib.compress(body.encode())


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for key, (project, _) in PROJECTS.items():
        with open(os.path.join(here, f"{key}.inv"), "wb") as f:
            f.write(inventory(project, ENTRIES[key]))


if __name__ == "__main__":
    main()
