"""Compiler options per backend: only a CPU gets any, every program compiled by compiling.jit
carries its backend's, and a jitted function called inside another is compiled without them
(only the outer program takes options)."""

import jax
import jax.numpy as jnp

from vae_jax import compiling


def test_only_the_cpu_gets_compiler_options():
    assert compiling.options("cpu") == {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_REDUCE"}
    assert compiling.options("gpu") == compiling.options("tpu") == {}


def _spy(monkeypatch):
    made = []
    real = jax.jit

    def jit(fn, compiler_options=None, **kwargs):
        made.append((fn.__name__, compiler_options))
        return real(fn, compiler_options=compiler_options, **kwargs)

    monkeypatch.setattr(compiling.jax, "jit", jit)
    return made


def test_programs_carry_the_backends_options_and_nested_calls_none(monkeypatch):
    made = _spy(monkeypatch)

    @compiling.jit
    def inner(x):
        return x * 2

    @compiling.jit(static_argnames="n")
    def outer(x, n):
        return inner(x) + n

    assert float(outer(jnp.float32(1.5), n=1)) == 4.0 and float(inner(jnp.float32(2.0))) == 4.0
    cpu = compiling.options("cpu")
    assert made == [("outer", cpu), ("inner", None), ("inner", cpu)]
    assert outer.__name__ == "outer" and "lowered" in type(outer.lower(jnp.float32(1.0), n=2)).__name__.lower()


def test_other_backends_compile_with_no_option(monkeypatch):
    made = _spy(monkeypatch)
    monkeypatch.setattr(compiling.jax, "default_backend", lambda: "gpu")
    f = compiling.jit(lambda x: x + 1)
    assert float(f(jnp.float32(1.0))) == 2.0 and made == [("<lambda>", None)]
