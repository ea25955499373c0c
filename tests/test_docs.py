"""The documentation site builds in strict mode (any warning fails it), and has every page, every
public API entry and every flag; a broken link, an undocumented API entry or parameter fails the build; opened
from disk with no network, in headless Chromium, every formula renders."""

import dataclasses
import html
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

import pytest

import vae_jax
from vae_jax.commands import encode, evaluate, explore, sample, train
from vae_jax.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


def build(source: str, out: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """sphinx-build -W --keep-going (what .ci/run runs) of `source` into `out`."""
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", source, out]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("site"))
    proc = build(DOCS, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def read(site: str, page: str) -> str:
    with open(os.path.join(site, page), encoding="utf-8") as f:
        return f.read()


def test_every_page_of_docs_is_built_and_in_the_contents(site):
    pages = [name.rsplit(".", 1)[0] for name in os.listdir(DOCS) if name.endswith((".md", ".ipynb"))]
    assert {"index", "getting-started", "tutorial", "api", "cli", "performance"} <= set(pages)
    index = read(site, "index.html")
    for page in pages:
        assert os.path.exists(os.path.join(site, f"{page}.html")), page
        if page != "index":
            assert f'href="{page}.html"' in index, f"{page} is not in the contents"


def test_every_public_api_entry_has_its_entry_with_its_docstring(site):
    api = read(site, "api.html")
    for name in vae_jax.__all__:
        assert f'id="vae_jax.{name}"' in api, name
    public = [n for n, v in vars(vae_jax.Model).items() if not n.startswith("_") and callable(v)]
    assert {"sample", "encode", "decode", "evaluate", "elbo"} <= set(public)
    for method in public:
        assert f'id="vae_jax.Model.{method}"' in api, method
    # the reference shows the docstrings themselves, not only the names, and links each to its source
    assert "Importance-sampled NLL" in api and "Load the latest" in api
    assert 'href="_modules/vae_jax/api.html#Model.sample"' in api
    assert "def sample(" in html.unescape(re.sub(r"<[^>]+>", "", read(site, "_modules/vae_jax/api.html")))


def test_the_site_says_which_version_it_documents(site):
    version = importlib.metadata.version("vae_jax")
    assert f"vae_jax {version}" in read(site, "index.html") and f"vae_jax {version}" in read(site, "api.html")


def test_the_flag_tables_come_from_the_parsers_and_the_config(site):
    cli = html.unescape(re.sub(r"<[^>]+>", " ", read(site, "cli.html")))
    for field in dataclasses.fields(Config):
        assert f"--{field.name.replace('_', '-')}" in cli, field.name
        assert field.metadata["help"].split(";")[0][:40] in cli.replace("\n", " "), field.name
    for command in (train, sample, evaluate, encode, explore):
        for action in command.make_parser()._actions:
            for flag in action.option_strings:
                assert flag in cli or flag in ("-h", "--help"), (command.__name__, flag)


def test_the_tutorial_page_shows_its_run(site):
    page = read(site, "tutorial.html")
    assert "From the ELBO to the code" in page
    assert "def reparameterize" in page and "kl_standard_normal" in page  # the package's own source
    assert page.count("<img") >= 4  # the curves, the samples, log p(x) against k, the class samples
    assert "explorer: http://127.0.0.1:" in page and "NLL" in page


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TYPESET = "() => window.MathJax && MathJax.startup && MathJax.startup.promise.then(() => true)"


def test_every_formula_renders_from_the_built_files_with_no_network(site):
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("no chromium: apt-get install chromium (.ci/run installs it)")
    with_math = sorted(
        name for name in os.listdir(site) if name.endswith(".html") and 'class="math' in read(site, name)
    )
    assert {"tutorial.html", "models.html", "evaluation.html"} <= set(with_math)
    elsewhere, failed = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"] if os.geteuid() == 0 else [])
        page = browser.new_page()

        def route(r):  # the site's own files only: anything else is refused, and noted
            if r.request.url.startswith("file://"):
                return r.continue_()
            elsewhere.append(r.request.url)
            return r.abort()

        page.route("**/*", route)
        page.on("requestfailed", lambda r: failed.append(r.url))
        for name in with_math:
            page.goto("file://" + os.path.join(site, name))  # as the README opens it: from disk
            page.wait_for_function(TYPESET, timeout=60_000)
            text = page.inner_text("article")
            spans, typeset = page.evaluate(
                "() => [document.querySelectorAll('.math').length, document.querySelectorAll('mjx-container').length]"
            )
            assert spans > 0 and typeset == spans, (name, spans, typeset)
            assert "\\(" not in text and "\\[" not in text, name  # no formula left as raw TeX
        browser.close()
    assert elsewhere == [] and failed == [], (elsewhere, failed)


@pytest.mark.slow  # a second build of the whole site
def test_a_broken_link_or_an_undocumented_entry_fails_the_build(tmp_path):
    source = tmp_path / "docs"
    shutil.copytree(DOCS, source, symlinks=False, ignore=shutil.ignore_patterns("_build"))
    half = 'def half(x, y):\n    """Half described.\n\n    Args:\n        x: one.\n    """\n'
    (tmp_path / "lonely.py").write_text("def undocumented(x):\n    return x\n\n\n" + half)
    with open(source / "api.md", "a", encoding="utf-8") as f:
        for name in ("undocumented", "half"):  # as api.md writes them: MyST hands autodoc's output to rST
            f.write(f"\n```{{eval-rst}}\n.. autofunction:: lonely.{name}\n```\n")
        f.write("\nSee [the missing page](nowhere.md).\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    proc = build(str(source), str(tmp_path / "out"), env)
    assert proc.returncode != 0
    assert "lonely.undocumented has no docstring" in proc.stderr
    assert "function lonely.half: parameter 'y' is not described" in proc.stderr
    assert "nowhere" in proc.stderr


def _extension(name: str):
    """A module of docs/_ext, loaded from its file as conf.py loads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, os.path.join(DOCS, "_ext", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _App:
    """What the docstring check reads of Sphinx: an environment to keep its findings in."""

    def __init__(self):
        self.env = type("Env", (), {})()


def _findings(what: str, name: str, obj, docstring: str) -> tuple[list[str], list[str]]:
    """(the check's messages, the entry's lines after it) for `obj` with napoleon's reading of `docstring`."""
    from sphinx.ext.napoleon import Config as NapoleonConfig
    from sphinx.ext.napoleon.docstring import GoogleDocstring

    lines = GoogleDocstring(docstring, NapoleonConfig(), what=what, name=name, obj=obj).lines()
    app = _App()
    _extension("docstrings")._check(app, what, name, obj, {}, lines)
    return app.env.vae_jax_undescribed[name], lines


def test_a_parameter_or_a_return_without_a_description_is_named():
    def scale(x: float, factor: float) -> float:
        return x * factor

    described = (
        "Scale x.\n\nArgs:\n    x: the value.\n    factor: what it is multiplied by.\n\nReturns:\n    x times it.\n"
    )
    assert _findings("function", "m.scale", scale, described)[0] == []
    half = "Scale x.\n\nArgs:\n    x: the value.\n"
    said = _findings("function", "m.scale", scale, half)[0]
    assert said == [
        "function m.scale: parameter 'factor' is not described",
        "function m.scale: what it returns is not described (a Returns: section)",
    ]
    assert _findings("function", "m.scale", scale, "")[0] == ["function m.scale has no docstring"]


@dataclasses.dataclass
class Point:
    x: float  # across, in |pixels|
    y: float = dataclasses.field(default=0.0, metadata={"help": "down, in `pixels`"})
    z: float = 0.0


def test_a_dataclass_field_is_described_by_its_help_or_its_line_comment():
    said, lines = _findings("class", "m.Point", Point, "A point.")
    assert said == ["class m.Point: parameter 'z' is not described"]
    # shown as the entry's parameters, escaped where reStructuredText would read markup
    assert ":param x: across, in \\|pixels\\|" in lines and ":param y: down, in \\`pixels\\`" in lines


def test_the_reference_has_every_family_objective_prior_flow_and_likelihood(site):
    import importlib
    import inspect
    import pkgutil

    from vae_jax import families, flows, objectives, priors
    from vae_jax.priors.base import Prior
    from vae_jax.priors.mixture import MixturePrior

    api = read(site, "api.html")
    shown = []
    for package, kind in ((objectives, objectives.Objective), (priors, Prior)):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for name, cls in vars(module).items():
                defined_here = inspect.isclass(cls) and cls.__module__ == module.__name__
                if defined_here and issubclass(cls, kind) and cls not in (kind, MixturePrior):  # abstract bases
                    shown.append(f"{module.__name__}.{name}")
    shown += [f"vae_jax.flows.{m}" for m in ("iaf.IAF", "steps.Steps", "hamiltonian.Hamiltonian")]
    shown += [f"vae_jax.families.{m}" for m in ("sphere.HypersphericalVAE", "poincare.PoincareVAE")]
    shown += ["vae_jax.VAE", "vae_jax.HVAE", "vae_jax.distributions.Likelihood"]
    shown += [f"vae_jax.distributions.{type(vae_jax.make_likelihood(n)).__name__}" for n in vae_jax.config.LIKELIHOODS]
    assert len(shown) > 30 and len(families.names()) >= 4 and flows.names()
    missing = [name for name in shown if f'id="{name}"' not in api]
    assert not missing, missing


def test_types_link_to_the_jax_numpy_flax_and_optax_documentation(site):
    api = read(site, "api.html")
    for address in (
        "https://docs.jax.dev/en/latest/_autosummary/jax.Array.html#jax.Array",
        "https://numpy.org/doc/stable/reference/generated/numpy.ndarray.html#numpy.ndarray",
        "https://flax.readthedocs.io/en/latest/api_reference/flax.linen/module.html#flax.linen.Module",
        "https://optax.readthedocs.io/en/latest/api/transformations.html#optax.GradientTransformation",
    ):
        assert f'href="{address}"' in api, address
    # the inventories are read from the repository: the build fetches nothing
    conf = open(os.path.join(DOCS, "conf.py"), encoding="utf-8").read()
    assert "_inventories" in conf and "intersphinx_mapping" in conf
