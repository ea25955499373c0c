"""Facts about the package's shape: no import cycle, nothing outside a family asks which family a
model is, every module about 300 lines of code at most (its docstrings apart: documenting each
argument does not split a module)."""

import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "vae_jax"
MAX_LINES = 310  # "about 300", docstrings not counted
MAX_WITH_DOCSTRINGS = 450  # and with them, a bound on a module's whole length


def modules() -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: pathlib.Path, known: set[str]) -> set[str]:
    """The package modules a file imports anywhere in it (at the top or inside a function), with the
    packages above them (importing a.b.c runs a/b/__init__.py first)."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    parents = {".".join(n.split(".")[:i]) for n in named for i in range(2, n.count(".") + 1)}
    return (named | parents) & known - {"vae_jax"}


def test_no_import_cycle():
    found = modules()
    graph = {name: imports(path, set(found)) - {name} for name, path in found.items()}
    graph["vae_jax"] = set()  # the package's lazy __getattr__ map names every module on purpose
    done, stack = set(), []

    def visit(name: str) -> None:
        if name in stack:
            raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(name) :], name]))
        if name in done:
            return
        stack.append(name)
        for other in sorted(graph[name]):
            if not other.startswith(f"{name}.") or name == "vae_jax":  # a package may import its own modules
                visit(other)
        stack.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_only_the_registry_and_the_families_know_the_families():
    found = modules()
    inside = re.compile(r"vae_jax\.families\.\w+")
    for name, path in found.items():
        if name.startswith("vae_jax.families"):
            continue
        text = path.read_text()
        assert not inside.search(text), f"{name} reaches into a family: {inside.search(text).group()}"
        assert not re.search(r"\.model\s*(==|!=|in\b|not in\b)", text), f"{name} decides by the model's name"
        assert not re.search(r"isinstance\([^)]*(Encoder|Decoder|VAE|HVAE|BottomUp|TopDown)\b", text), name
        assert not re.search(r"getattr\([^)]*(vae|model)\b", text), f"{name} probes a model with getattr"


def docstring_lines(text: str) -> int:
    """How many lines of `text` are docstrings (of the module, its classes and functions)."""
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    spans = [
        node.body[0].end_lineno - node.body[0].lineno + 1
        for node in ast.walk(ast.parse(text))
        if isinstance(node, documented) and ast.get_docstring(node, clean=False) is not None
    ]
    return sum(spans)


def test_docstring_lines_are_counted_as_docstrings():
    text = 'def f(x):\n    """One.\n\n    Args:\n        x: a thing.\n    """\n'
    text += '    s = """not a docstring"""\n    return x\n'
    assert docstring_lines(text) == 5


def test_every_module_is_about_300_lines_at_most():
    lengths = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    code = {name: n - docstring_lines(modules()[name].read_text()) for name, n in lengths.items()}
    assert not {name: n for name, n in code.items() if n > MAX_LINES}
    assert not {name: n for name, n in lengths.items() if n > MAX_WITH_DOCSTRINGS}


# The package's layers, lowest first: a module imports modules of its own layer or below, never above.
LAYERS = (
    # knows nothing of models or runs
    "errors integrity precision compiling logs smoke visualize parallel memory newfiles workdir options tracking",
    "sample_metrics classifier disentanglement",  # the yardstick's measures and classifiers, the factor scores
    "data",  # the dataset table, sources, pixels
    "distributions vmf poincare priors flows latent samplers",  # the maths of models
    "objectives families",  # the registries, what they register
    "config flags optim runmeta state saving checkpoint resuming pretrained",  # a run's description and files
    "training loop evaluation codebook outputs report experiment api yardstick factor_scores",  # running and measuring
    "pictures fitted cli explorer notebook",  # what users see
    "commands compare",
)


def layer(module: str) -> int:
    """The layer of a package module (its longest listed prefix)."""
    name = module.removeprefix("vae_jax.")
    matches = [
        (len(prefix), i)
        for i, names in enumerate(LAYERS)
        for prefix in names.split()
        if name == prefix or name.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer of tests/test_layout.py"
    return max(matches)[1]


def test_no_module_imports_one_of_a_layer_above_it():
    found = modules()
    upward = [
        f"{name} (layer {layer(name)}) imports {other} (layer {layer(other)})"
        for name, path in found.items()
        if name != "vae_jax"
        for other in imports(path, set(found))
        if other != name and layer(other) > layer(name)
    ]
    assert not upward, upward


def test_only_an_objective_decides_by_its_name_and_only_the_families_by_a_prior_or_flow():
    by_objective = re.compile(
        r"\.objective\s*(==|!=|in\b|not in\b)|\[\s*\w+\.objective\s*\]|[\"'](vae|iwae|ae)[\"']\s*:"
    )
    by_latent = re.compile(r"\.(prior|flow)\s*(==|!=|in\b|not in\b)|\.get\(\s*\w+\.(prior|flow)\b")
    for name, path in modules().items():
        text = path.read_text()
        if not name.startswith("vae_jax.objectives"):
            assert not by_objective.search(text), f"{name} decides by the objective's name"
        if not name.startswith(("vae_jax.priors", "vae_jax.flows")):
            assert not by_latent.search(text), f"{name} decides by the prior's or flow's name"
