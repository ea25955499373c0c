"""Facts about the package's shape: no import cycle, nothing outside a family asks which family a
model is, every module about 300 lines at most."""

import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "vae_jax"
MAX_LINES = 310  # "about 300"


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


def test_every_module_is_about_300_lines_at_most():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long
