"""The package installs like any other: `pip install .` gives `import vae_jax` from anywhere and the
console commands; nothing in the repository edits sys.path."""

import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # run by the full suite only (see docs/development.md, Tests)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pip_install_gives_the_package_and_the_commands_outside_the_repository(tmp_path):
    source = tmp_path / "src"  # build from a copy: nothing is written into the checkout
    shutil.copytree(os.path.join(ROOT, "vae_jax"), source / "vae_jax", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, name), source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing but the venv decides what imports
    venv = tmp_path / "venv"
    python = _venv_seeing_these_packages(venv)
    install = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*install, str(source)], check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = dict(cwd=elsewhere, env=env, capture_output=True, text=True)
    where = subprocess.run([python, "-c", "import vae_jax; print(vae_jax.__file__)"], check=True, **run)
    where = where.stdout.strip()
    assert where.startswith(str(venv)), where  # the installed copy, not the checkout
    for command, flag in (
        ("vae-jax-train", "--latent-dim"),
        ("vae-jax-sample", "--mode"),
        ("vae-jax-evaluate", "--k"),
        ("vae-jax-encode", "--images"),
        ("vae-jax-explore", "--pretrained"),
    ):
        proc = subprocess.run([str(venv / "bin" / command), "--help"], **run)
        assert proc.returncode == 0 and flag in proc.stdout, proc.stderr
    proc = subprocess.run([str(venv / "bin" / "vae-jax-train"), "--latent-dim", "0"], **run)
    assert proc.returncode == 2 and "--latent-dim must be positive" in proc.stderr
    shipped = (  # the shipped models and the explorer's page come with it
        "import vae_jax\nfrom importlib import resources\nfrom vae_jax import pretrained\n"
        "for name in pretrained.names():\n    m = vae_jax.load('pretrained:' + name)\n    print(name, m.step)\n"
        "from vae_jax import classifier\nprint(len([classifier.load(d) for d in classifier.names()]))\n"
        "page = resources.files('vae_jax.explorer')\n"
        "print(all(page.joinpath(f).is_file() for f in ('page.html', 'page.js', 'page.css')))"
    )
    proc = subprocess.run([python, "-c", shipped], **run)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[-1] == "True" and len(lines) == 2 + 2 * len(_shipped_names()), proc.stdout
    classifiers = [f for f in os.listdir(os.path.join(ROOT, "vae_jax", "classifiers")) if f.endswith(".json")]
    assert int(lines[-2]) == len(classifiers) > 0  # the yardstick's classifiers come with it


def _shipped_names() -> list[str]:
    return sorted(f[:-5] for f in os.listdir(os.path.join(ROOT, "vae_jax", "weights")) if f.endswith(".json"))


def _venv_seeing_these_packages(venv) -> str:
    """A throwaway venv that imports what this interpreter imports (jax, setuptools, ...), so that only
    vae_jax itself is installed, offline; returns its python. Not --system-site-packages: run from a
    virtualenv, that gives the base interpreter's packages, not the virtualenv's."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    inner = subprocess.run(
        [python, "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True, text=True
    )
    with open(os.path.join(inner.stdout.strip(), "_outer_packages.pth"), "w") as f:
        f.write("\n".join(p for p in sys.path if p.endswith("-packages")) + "\n")
    return python


def test_the_throwaway_venv_imports_what_this_interpreter_imports(tmp_path):
    python = _venv_seeing_these_packages(tmp_path / "venv")
    for module in ("setuptools", "jax", "orbax.checkpoint"):
        here = __import__(module, fromlist=["_"]).__file__
        there = subprocess.run(
            [python, "-c", f"import {module} as m; print(m.__file__)"], capture_output=True, text=True
        )
        assert there.stdout.strip() == here, there.stderr


def test_no_file_edits_sys_path():
    edits = [("sys." + "path") + tail for tail in (".insert(", ".append(", ".extend(", "[", " =", " +=")]
    offenders = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("build", "checkpoints")]
        for name in files:
            if name.endswith((".py", ".ipynb")):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    text = f.read()
                if any(edit in text for edit in edits):
                    offenders.append(os.path.relpath(os.path.join(folder, name), ROOT))
    assert offenders == []


def test_constraints_pin_every_package_the_requirements_install():
    """The closure of the package's requirements with the extras requirements.txt installs, following the
    extras each requirement asks for (orbax asks for etils[epath], which needs fsspec), is pinned."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    with open(os.path.join(ROOT, "constraints.txt")) as f:
        pinned = {canonicalize_name(line.split("==")[0]) for line in f if "==" in line}
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        line = next(line for line in f if line.startswith("-e .["))
    extras = frozenset(line.strip()[len("-e .[") : -1].split(","))
    assert {"dev", "docs", "mlflow", "wandb"} <= extras
    seen, todo = set(), [("vae-jax", extras)]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:  # not installed here: not in the closure as resolved
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    installed = {name for name, _ in seen if name != "vae-jax" and _installed(name)}
    assert installed - pinned == set()


def _installed(name: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(name)
    except md.PackageNotFoundError:
        return False
    return True


def test_the_citation_file_is_valid_and_names_the_package_version():
    import importlib.metadata

    import yaml

    with open(os.path.join(ROOT, "CITATION.cff"), encoding="utf-8") as f:
        cff = yaml.safe_load(f)
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["message"] and cff["title"].startswith("vae_jax") and cff["authors"][0]["name"]
    assert cff["version"] == importlib.metadata.version("vae_jax")
    assert cff["license"] == "Apache-2.0" and "Apache License" in open(os.path.join(ROOT, "LICENSE")).read(300)


def test_the_changelog_has_an_entry_for_the_package_version_and_is_in_the_docs():
    import importlib.metadata
    import re

    with open(os.path.join(ROOT, "CHANGELOG.md"), encoding="utf-8") as f:
        text = f.read()
    versions = re.findall(r"^## (\d+\.\d+\.\d+)\b", text, re.MULTILINE)
    assert versions and versions[0] == importlib.metadata.version("vae_jax")  # the newest entry is this version's
    assert len(versions) == len(set(versions))  # one entry per version
    with open(os.path.join(ROOT, "docs", "changelog.md"), encoding="utf-8") as f:
        assert "../CHANGELOG.md" in f.read()
