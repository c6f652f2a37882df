"""Every generated kernel, in both backends, against mpmath at 30 digits (Hypothesis).

The reference evaluates the same SymPy expression the kernel was printed from, by
mpmath (lambdify with mpmath's own betainc), and for implicit potentials solves the root
equation with mpmath.findroot. Tolerance: ``|got - ref| <= 1e-12 (|f| + |x f'(x)|)``
with ``x`` the first argument: the error of a backward-stable double-precision evaluation
(a relative perturbation of ``x`` by a few hundred ulp moves ``f`` by ``|x f'|`` times
that). It is a plain ``1e-12`` relative error except where the function itself is
ill-conditioned, e.g. ``R(x)`` next to its double zero at ``x = 1``.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st

from numerics._generated import numpy_kernels as NK
from numerics._generated import torch_kernels as TK
from theory.catalog import kernel_specs
from theory.potentials import SumLast
from theory.special import BoxCox

SPECS = {s.name: s for s in kernel_specs()}
RTOL = 1e-12

qs = st.floats(1.0, 2.0)
Ls = st.integers(1, 8)
mag = st.floats(-6, 3).map(lambda e: 10.0**e)
signed = st.tuples(mag, st.sampled_from([-1.0, 1.0])).map(lambda t: t[0] * t[1])


def _mp_boxcox(xx, lam):
    return mpmath.log(xx) if lam == 0 else (xx**lam - 1) / lam


def reference(spec, values: dict):
    """30-digit value of ``spec.expr`` at ``values`` (python floats / lists by arg name)."""
    with mpmath.workdps(30):
        args = {s: values[n] for s, n in spec.args}
        xsym = spec.args[0][0]
        sign = 1
        if spec.symmetry is not None:
            xv = args[xsym]
            args[xsym] = abs(xv)
            sign = (1 if xv > 0 else -1 if xv < 0 else 0) if spec.symmetry == "odd" else 1
        expr = spec.expr
        vec = {s: v for s, v in args.items() if isinstance(v, list)}
        if vec:
            (vsym, vv), = vec.items()
            vv = [mpmath.mpf(a) - min(mpmath.mpf(b) for b in vv) for a in vv]   # kernel shifts by min
            expand = lambda e: sp.Add(*(e.args[0].subs(vsym, sp.Float(str(a), 40)) for a in vv))  # noqa
            expr = expr.replace(lambda e: isinstance(e, SumLast), expand)
            residual = spec.root.residual.replace(lambda e: isinstance(e, SumLast), expand)
        elif spec.root is not None:
            residual = spec.root.residual
        scal = {s: mpmath.mpf(v) for s, v in args.items() if not isinstance(v, list)}
        mods = [{"BoxCox": _mp_boxcox, "betainc": lambda a, b, x1, x2: mpmath.betainc(a, b, x1, x2)}, "mpmath"]
        if spec.root is not None:
            var = spec.root.var
            fres = sp.lambdify([var] + list(scal), residual, mods)
            fstart = sp.lambdify(list(scal), spec.root.start.replace(
                lambda e: isinstance(e, SumLast), expand) if vec else spec.root.start, mods)
            v0 = fstart(*scal.values())
            root = mpmath.findroot(lambda v: fres(v, *scal.values()), v0, tol=mpmath.mpf(10) ** -28)
            f = sp.lambdify([var] + list(scal), expr, mods)
            return sign * f(root, *scal.values()), 0
        f = sp.lambdify(list(scal), expr, mods)
        vals = list(scal.values())
        slope = mpmath.diff(lambda t: f(t, *vals[1:]), vals[0]) * vals[0] if vals[0] != 0 else 0
        return sign * f(*vals), abs(slope)


def check_kernel(name, values, rtol=RTOL):
    spec = SPECS[name]
    ref, slope = reference(spec, values)
    assert mpmath.isfinite(ref), f"reference not finite at {values}"
    scale = abs(float(ref)) + float(slope)
    for mod, conv in ((NK, lambda v: np.asarray(v, dtype=np.float64)),
                      (TK, lambda v: torch.as_tensor(v, dtype=torch.float64))):
        args = [conv(values[n]) for n in spec.arg_names]
        got = float(getattr(mod, name)(*args))
        assert math.isfinite(got), f"{mod.__name__}.{name} returned {got} at {values}"
        err = abs(got - float(ref)) / max(scale, 1e-300)
        assert err <= rtol, f"{mod.__name__}.{name}{values}: {got} vs {ref} (rel {err:.2e})"


def test_catalog_is_fully_covered():
    assert set(SPECS) == set(DOMAINS), set(SPECS) ^ set(DOMAINS)


def _esc1(d):
    y, u0, u1 = d["y"], min(d["u"]), max(d["u"])
    return dict(x0=y * u0, x1=y * u1, y=y, L=d["L"], q=d["q"])


DOMAINS = {
    "phi": st.fixed_dictionaries({"z": st.floats(-5, 5), "q": qs}),
    "bal1_invariant": st.fixed_dictionaries({"w_k": st.floats(-3, 3), "w_j": st.floats(-3, 3), "q": qs}),
    "mir6_rate": st.fixed_dictionaries({"x": signed, "d": st.floats(-5, 5), "L": Ls, "q": qs}),
    "esc1_time": st.fixed_dictionaries({"y": st.floats(0.1, 10), "u": st.lists(
        st.floats(1e-8, 1 - 1e-6), min_size=2, max_size=2, unique=True), "L": Ls, "q": qs}).map(_esc1),
    "esc1_integrand": st.fixed_dictionaries({"y": st.floats(0.1, 10), "u": st.floats(1e-6, 0.999), "L": Ls,
                                             "q": qs}).map(lambda d: dict(x=d["y"] * d["u"], y=d["y"], L=d["L"], q=d["q"])),
    "esc2_rate": st.fixed_dictionaries({"alpha": st.floats(1e-3, 0.9), "y": st.floats(1.0, 10), "L": Ls, "q": qs}),
    "esc3_coercivity": st.fixed_dictionaries({"lam": st.floats(0.01, 3), "L": Ls, "q": qs}),
}
for fam, extra in (("mir1", {"L": Ls, "q": qs}), ("mir2", {"q": qs, "c": st.floats(0.01, 10)})):
    for which in ("hess", "grad", "value"):
        DOMAINS[f"{fam}_{which}"] = st.fixed_dictionaries({"x": signed, **extra})
DOMAINS["mir3_hess"] = st.integers(2, 6).flatmap(lambda n: st.fixed_dictionaries(
    {"x": st.floats(-4, 2).map(lambda e: 10.0**e), "q": qs, "dk": st.lists(st.floats(0, 2), min_size=n, max_size=n)}))
# two-branch: for m < 1 a branch output reaches 0 at |x| = 2^(1/beta) alpha^L >= 2 alpha^L,
# where the potential ends; sample |x| <= 1.9 alpha^L
for which in ("hess", "grad"):
    DOMAINS[f"twobranch_{which}"] = st.fixed_dictionaries(
        {"t": st.tuples(st.floats(-4, math.log10(1.9)), st.sampled_from([-1.0, 1.0])),
         "L": st.integers(1, 6), "q": qs, "alpha": st.floats(0.05, 2)}).map(
        lambda d: dict(x=d["t"][1] * 10.0 ** d["t"][0] * d["alpha"] ** d["L"], L=d["L"], q=d["q"],
                       alpha=d["alpha"]))
for name, extra, xs in (("square", {}, mag), ("signpower", {"L": Ls}, signed), ("sinh", {}, signed)):
    for which in ("hess", "grad", "value"):
        DOMAINS[f"mir5_{name}_{which}"] = st.fixed_dictionaries({"x": xs, "q": qs, **extra})
    for which in ("g", "dg"):
        DOMAINS[f"mir5_{name}_{which}"] = st.fixed_dictionaries({"w": st.floats(-3, 3), **extra})


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_kernel_matches_mpmath(name):
    @given(DOMAINS[name])
    def run(values):
        check_kernel(name, values)
    run()
