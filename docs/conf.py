"""Sphinx configuration of the documentation site: python -m sphinx -W --keep-going docs build/docs

Pages are Markdown (MyST), the tutorial is a notebook rendered with its stored outputs (myst-nb; the
test suite executes it), the API reference comes from the docstrings (autodoc), each entry linked to
its source shown in the site (viewcode), and the flag tables from the commands' own parsers
(`_ext/flagtable.py`). Names of JAX, Flax, Optax, NumPy and Python link to their documentation
(intersphinx, from the inventories in `_inventories/`: `_ext/links.py`). MathJax is served from the
built site (sphinx-mathjax-offline), so the formulas render with no network. The title carries the
installed package's version. With -W every warning fails the build: a broken link, a missing page,
an API entry without a docstring, a parameter without a description (`_ext/docstrings.py`).
"""

import importlib.metadata
import importlib.util
import os

project = "vae_jax"
release = version = importlib.metadata.version("vae_jax")  # the installed package's, as pyproject.toml says
author = "the vae_jax authors"
copyright = "vae_jax authors"
extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
]
exclude_patterns = ["_build", "runs", "Thumbs.db", ".DS_Store"]
html_theme = "furo"
html_title = f"vae_jax {version}"
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebook's outputs are a real run; tests/test_tutorial.py executes it afresh
autodoc_default_options = {"members": True, "undoc-members": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "mixed"  # the constructor's arguments in the class's header, described below it


def _load(*path: str):
    """A Python file of the docs folder, loaded as a module (the docs are not a package)."""
    spec = importlib.util.spec_from_file_location(path[-1][:-3], os.path.join(os.path.dirname(__file__), *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_INVENTORIES = _load("_inventories", "make.py")  # the projects' addresses, one table for the files and the links
intersphinx_mapping = {  # read from the files its make.py writes: the build needs no network
    key: (url, os.path.join(os.path.dirname(__file__), "_inventories", f"{key}.inv"))
    for key, (_, url) in _INVENTORIES.PROJECTS.items()
}
suppress_warnings = ["mystnb.unknown_mime_type"]
smartquotes = False  # "--flag" stays two hyphens
nb_merge_streams = True  # the log lines of a cell are one block


def setup(app) -> None:
    """The project's own extensions in _ext/, loaded from their files."""
    for name in ("flagtable", "docstrings", "links"):
        _load("_ext", f"{name}.py").setup(app)
