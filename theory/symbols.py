"""The SymPy symbols every derivation shares.

Everything is derived on the positive half-line ``x > 0`` (model coordinate) and
extended by symmetry; parameters carry the assumptions that make SymPy return
``sign``/``Abs`` forms rather than ``re``/``im`` ones.
"""

import sympy as sp

x = sp.Symbol("x", positive=True)          # model coordinate, x = g(w)
w = sp.Symbol("w", positive=True)          # one parameter (scalar reparameterizations)
s = sp.Symbol("s", real=True)              # root variable of implicit potentials
u = sp.Symbol("u", positive=True)          # integration variable
q = sp.Symbol("q", positive=True)          # steepest exponent, 1 <= q <= 2
L = sp.Symbol("L", positive=True, integer=True)  # depth (number of factors)
c = sp.Symbol("c", positive=True)          # |imbalance| |u|^q - |v|^q  (MIR-2)
y = sp.Symbol("y", positive=True)          # regression target of the reference problem
x0 = sp.Symbol("x_0", positive=True)       # start of the escape
x1 = sp.Symbol("x_1", positive=True)       # escape target
alpha = sp.Symbol("alpha", positive=True)  # initialization scale
lam = sp.Symbol("lambda", positive=True)   # non-zero factors at the saddle (ESC-3)
d = sp.Symbol("d", real=True, nonzero=True)  # a gradient component d_i f(x) != 0
t = sp.Symbol("t", nonnegative=True)       # time

m = q * (L - 1) / L                        # metric exponent
beta = 1 - m


def phi(z, qq=q):
    """The steepest map ``phi_q(z) = sign(z) |z|^(q-1)``."""
    return sp.sign(z) * sp.Abs(z) ** (qq - 1)
