"""``python -m verify.precision``: every generated kernel in float64 (NumPy, torch) and float32
(torch) against mpmath at 30 digits, and on CUDA where it exists; one row per kernel.

The reference evaluates the same SymPy expression the kernel was printed from (lambdify to
mpmath, with mpmath's own incomplete beta); implicit potentials solve their root equation
by the kernels' rule at 30 digits (``RootSpec.solve``). Errors are reported as
``|got - ref| / (|f| + |x f'(x)|)`` with ``x`` the first argument: the plain relative error, except where the function itself is
ill-conditioned (``R(x)`` next to its double zero at ``x = 1``), where it measures what a
backward-stable evaluation can achieve. ``SAMPLERS`` define each kernel's domain (a MIR-5
model's and a geometry's come from their declared domains); the tests draw from the same samplers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys

import mpmath
import numpy as np
import sympy as sp
import torch
from tqdm import tqdm

from numerics._generated import numpy_kernels as NK
from numerics._generated import torch_kernels as TK
from numerics.cli import Parser, add_device, add_seed, description, piped
from theory.catalog import kernel_specs
from theory.geometries import GEOMETRIES
from theory.models import MODELS
from theory.kernelspec import SumLast



@functools.cache
def specs() -> dict:
    """The catalogue's kernel specifications by name (derived on first use: SymPy, ~30 s)."""
    return {s.name: s for s in kernel_specs()}


def _q(r):
    return float(r.choice([1.0, 2.0])) if r.random() < 0.15 else float(r.uniform(1, 2))


def _L(r, hi=8):
    return int(r.integers(1, hi + 1))


def _mag(r, lo=-6, hi=3):
    return float(10 ** r.uniform(lo, hi))


def _signed(r, lo=-6, hi=3):
    return _mag(r, lo, hi) * float(r.choice([-1.0, 1.0]))


def _esc1(r):
    y = float(r.uniform(0.1, 10))
    u = sorted(float(v) for v in r.uniform(1e-8, 1 - 1e-6, 2))
    return dict(x0=y * u[0], x1=y * u[1], y=y, L=_L(r), q=_q(r))


SAMPLERS = {
    "phi": lambda r: dict(z=float(r.uniform(-5, 5)), q=_q(r)),
    "bal1_invariant": lambda r: dict(w_k=float(r.uniform(-3, 3)), w_j=float(r.uniform(-3, 3)), q=_q(r)),
    "mir6_rate": lambda r: dict(x=_signed(r), d=float(r.uniform(-5, 5)), L=_L(r), q=_q(r)),
    "esc1_time": _esc1,
    "esc1_integrand": lambda r: (lambda y, u: dict(x=y * u, y=y, L=_L(r), q=_q(r)))(
        float(r.uniform(0.1, 10)), float(r.uniform(1e-6, 0.999))),
    "esc2_rate": lambda r: dict(alpha=float(r.uniform(1e-3, 0.9)), y=float(r.uniform(1, 10)), L=_L(r), q=_q(r)),
    "esc3_coercivity": lambda r: dict(lam=float(r.uniform(0.01, 3)), L=_L(r), q=_q(r)),
}


def _draw(p, r):
    """One value of parameter ``p`` over its domain: ``q`` with its end points weighted, a
    vector parameter as 2 to 6 entries."""
    if p.name == "q":
        return _q(r)
    if p.vector:
        return [float(v) for v in r.uniform(p.lo, p.hi, int(r.integers(2, 7)))]
    return int(r.integers(p.lo, p.hi + 1)) if p.integer else float(r.uniform(p.lo, p.hi))


def _model_params(model, r) -> dict:
    return {p.name: _draw(p, r) for p in model.params}


def _geometry_sampler(geo):
    """The parameters over their domains, then ``|x|`` log-uniform over ``x_range`` times
    ``x_scale`` (both signs where the geometry is ``signed``)."""
    lo, hi = (math.log10(v) for v in geo.x_range)
    scale = sp.lambdify([p.name for p in geo.params], sp.sympify(geo.x_scale))

    def sample(r):
        params = _model_params(geo, r)
        return dict(x=(_signed if geo.signed else _mag)(r, lo, hi) * scale(*params.values()), **params)
    return sample


for _geo in GEOMETRIES.values():
    SAMPLERS.update({f"{_geo.name}_{w}": _geometry_sampler(_geo) for w in _geo.kernels})


def _model_samplers(model) -> dict:
    """``x`` on both sides when ``g`` is odd (the potential is symmetric), ``x > 0`` otherwise;
    ``w`` in ``[-3, 3]``; the parameters over their declared domains."""
    x_of = _signed if model.reparam.odd else _mag
    out = {f"mir5_{model.name}_{w}": lambda r: dict(x=x_of(r), q=_q(r), **_model_params(model, r))
           for w in ("hess", "grad", "value")}
    out.update({f"mir5_{model.name}_{w}": lambda r: dict(w=float(r.uniform(-3, 3)), **_model_params(model, r))
                for w in ("g", "dg")})
    return out


for _model in MODELS.values():
    SAMPLERS.update({k: fn for k, fn in _model_samplers(_model).items() if hasattr(NK, k)})   # its committed kernels



def _ib1_dual_mir1(r):
    # theta = R'(x) of a sampled x > 0: inside the range of R' (bounded above when m > 1)
    L, q = _L(r), _q(r)
    return dict(theta=float(NK.mir1_grad(np.float64(_mag(r)), np.float64(L), np.float64(q))), L=L, q=q)


SAMPLERS["ib1_dual_mir1"] = _ib1_dual_mir1
SAMPLERS["ib1_dual_mir2"] = lambda r: dict(theta=float(r.uniform(-5, 5)), c=float(r.uniform(0.01, 10)))
SAMPLERS["ib3_inverse_exponent"] = lambda r: dict(L=_L(r), q=_q(r))


def _dec2(r, decay):
    """Parameters with a stable non-zero equilibrium, away from the fold where it is born:
    ``max_x (y - x) x^gamma >= 2 c`` for ``g = x - y + c x^-gamma`` (DEC-2)."""
    while True:
        y, nu, L = float(r.uniform(0.1, 5)), float(10 ** r.uniform(-2, 0.3)), _L(r)
        q = float(r.uniform(1.1, 2))
        gam, c = (1 - q / (q - 1) / L, nu ** (1 / (q - 1))) if decay == "decoupled" else (1 - 2 / L, nu)
        x_lo = max(gam, 0.0) * y / (1 + max(gam, 0.0))
        if (y - x_lo) * x_lo ** gam >= 2 * c if gam > 0 else gam < 0 or y >= 2 * c:
            return dict(y=y, nu=nu, L=L, q=q) if decay == "decoupled" else dict(y=y, nu=nu, L=L)


def _esc4_extra(r):
    L, y = _L(r), float(r.uniform(0.1, 5))
    a = sorted(float(v) for v in r.uniform(1e-6, 1 - 1e-6, 2))
    return dict(a_0=a[0] * y ** (1 / L), a_1=a[1] * y ** (1 / L), y=y, L=L)


SAMPLERS["dec1_h_grad"] = lambda r: dict(x=_signed(r), L=_L(r), q=_q(r))
SAMPLERS["dec1_h"] = lambda r: dict(x=_signed(r), L=_L(r), q=_q(r))
SAMPLERS["dec2_decoupled"] = lambda r: _dec2(r, "decoupled")
SAMPLERS["dec2_coupled"] = lambda r: _dec2(r, "coupled")
SAMPLERS["dec2_box"] = lambda r: dict(y=float(r.uniform(0.1, 5)), nu=float(10 ** r.uniform(-2, 0.5)), L=_L(r))
SAMPLERS["esc4_gd_step"] = lambda r: dict(y=float(r.uniform(0.1, 10)), L=_L(r))
SAMPLERS["esc4_gd_extra"] = _esc4_extra
SAMPLERS["phi_prime"] = lambda r: dict(z=_signed(r), q=_q(r))
SAMPLERS["mir1_mobility"] = lambda r: dict(x=_signed(r), L=_L(r), q=_q(r))
SAMPLERS["mir1_mobility_prime"] = lambda r: dict(x=_signed(r), L=_L(r), q=_q(r))

def _mp_boxcox(xx, lam):
    return mpmath.log(xx) if lam == 0 else (xx**lam - 1) / lam


_MODULES = [{"BoxCox": _mp_boxcox, "betainc": lambda a, b, x1, x2: mpmath.betainc(a, b, x1, x2)}, "mpmath"]


def reference(spec, values: dict):
    """``(f, |x f'(x)|)`` at 30 digits for ``spec`` at ``values`` (arguments by name)."""
    with mpmath.workdps(30):
        args = {s: values[n] for s, n in spec.args}
        xsym, sign = spec.args[0][0], 1
        if spec.symmetry is not None:
            xv = args[xsym]
            args[xsym] = abs(xv)
            sign = (1 if xv > 0 else -1 if xv < 0 else 0) if spec.symmetry == "odd" else 1
        expr, start = spec.expr, spec.root.start if spec.root is not None else None
        residual = spec.root.residual if spec.root is not None else None
        vec = {s: v for s, v in args.items() if isinstance(v, list)}
        if vec:
            (vsym, vv), = vec.items()
            vv = [mpmath.mpf(a) - min(mpmath.mpf(b) for b in vv) for a in vv]   # kernels shift by the min

            def expand(e):
                return sp.Add(*(e.args[0].subs(vsym, sp.Float(str(a), 40)) for a in vv))
            expr, residual, start = (e.replace(lambda z: isinstance(z, SumLast), expand)
                                     for e in (expr, residual, start))
        scal = {s: mpmath.mpf(v) for s, v in args.items() if not isinstance(v, list)}
        vals = list(scal.values())
        if spec.root is not None:
            root = dataclasses.replace(spec.root, residual=residual, start=start).solve(scal, _MODULES)
            return sign * sp.lambdify([spec.root.var] + list(scal), expr, _MODULES)(root, *vals), 0
        f = sp.lambdify(list(scal), expr, _MODULES)
        slope = mpmath.diff(lambda t: f(t, *vals[1:]), vals[0]) * vals[0] if vals[0] != 0 else 0
        return sign * f(*vals), abs(slope)


def evaluate(name: str, values: dict, backend: str = "numpy", dtype=torch.float64, device="cpu") -> float:
    spec = specs()[name]
    if backend == "numpy":
        args = [np.asarray(values[n], dtype=np.float64) for n in spec.arg_names]
        return float(getattr(NK, name)(*args))
    args = [torch.as_tensor(values[n], dtype=dtype, device=device) for n in spec.arg_names]
    return float(getattr(TK, name)(*args))


def scaled_error(got: float, ref, slope) -> float:
    if not math.isfinite(got):
        return math.inf
    return abs(got - float(ref)) / max(abs(float(ref)) + float(slope), 1e-300)


def report(n: int = 100, seed: int = 0, cuda: bool = False) -> list[dict]:
    rows = []
    for name in tqdm(sorted(specs()), desc="kernels", unit="kernel", file=sys.stderr, leave=False):
        rng = np.random.default_rng(seed)
        errs = {"numpy f64": 0.0, "torch f64": 0.0, "torch f32": 0.0}
        if cuda:
            errs["cuda f64"] = 0.0
        for _ in range(n):
            values = SAMPLERS[name](rng)
            ref, slope = reference(specs()[name], values)
            runs = {"numpy f64": ("numpy", torch.float64, "cpu"), "torch f64": ("torch", torch.float64, "cpu"),
                    "torch f32": ("torch", torch.float32, "cpu")}
            if cuda:
                runs["cuda f64"] = ("torch", torch.float64, "cuda")
            for label, (b, dt, dev) in runs.items():
                try:
                    got = evaluate(name, values, b, dt, dev)
                except ArithmeticError:
                    got = math.nan
                errs[label] = max(errs[label], scaled_error(got, ref, slope))
        rows.append(dict(kernel=name, **errs))
    return rows


def main(argv=None) -> int:
    p = Parser(prog="python -m verify.precision", description=description(__doc__))
    p.add_argument("--points", type=int, default=100, help="random points per kernel (default 100)")
    add_seed(p, "the random points")
    add_device(p, "cuda adds a GPU column")
    args = p.parse_args(argv)
    if args.points < 1:
        p.error(f"--points must be >= 1, got {args.points}")
    print(table(report(args.points, args.seed, args.device == "cuda"), args.points))
    return 0


def table(rows, points: int) -> str:
    """One row per kernel, its largest scaled error per backend, and a closing summary."""
    cols = [c for c in rows[0] if c != "kernel"]
    lines = [f"{'kernel':<24}" + "".join(f"{c:>12}" for c in cols)]
    lines += [f"{r['kernel']:<24}" + "".join(f"{r[c]:>12.1e}" for c in cols) for r in rows]
    return "\n".join([*lines, "", f"max scaled error vs mpmath (30 digits) over {points} points per kernel:",
                      f"float64 worst {max(r['numpy f64'] for r in rows):.1e}, "
                      f"float32 worst {max(r['torch f32'] for r in rows):.1e}"])


if __name__ == "__main__":
    sys.exit(piped(main))
