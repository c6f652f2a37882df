"""Steepest flows as batched ODE systems (their fields; :mod:`numerics.simulate` runs them).

* parameter space, deep diagonal ``x_i = prod_k w_ik``:
  ``dw_ik/dt = -phi_q(d_i f(x) prod_{j != k} w_ij)``;
* model space, steepest mirror flow: ``dx_i/dt = -phi_q(d_i f(x)) / R''(x_i)``.

``phi_q`` is the generated kernel. Switching functions are the gradient components
``d_i f`` and (parameter space) the factors ``w_ik``, named blocks of each flow's
``layout`` (:class:`numerics.modes.ModeLayout`); the integrator freezes their signs
inside each step and locates their zeros (see :mod:`numerics.integrate.hybrid`). For a
separable loss a coordinate that reaches ``d_i f = 0`` slides: by Filippov's convex
combination (weight 1/2 on each side, ``q = 1``) or by continuity of ``phi_q`` (``q > 1``)
its velocity on the surface is 0, so it is frozen there.

``extras`` are quadratures integrated alongside the state (appended components, under the
same error control): callables ``(x, grad, p) -> (B, k)``.
"""

from __future__ import annotations

import threading
import weakref

import torch

from . import forward
from ._generated import torch_kernels as K
from .geometry import exclusive_prod, exclusive_products, frozen_phi, hold, pair_products
from .integrate import ODESystem, Params
from .jacobians import mirror_jacobian, mirror_jacobian_low_rank, parameter_jacobian, steepest_slope
from .losses import Loss
from .modes import ModeLayout


def frozen_slope(z, q, held):
    """``d/dz`` of the frozen map ``sigma |z|^(q-1)`` (:func:`frozen_phi`, ``held`` a
    :class:`~numerics.geometry.Held` or ``None``): ``sigma sign(z) phi_q'(z)``, ``phi_q'(z)``
    where the sign is not held or ``z = 0``."""
    slope = steepest_slope(z, q)
    if held is None:
        return slope
    flip = held.fixed & (z != 0) & (held.sigma != torch.sign(z))
    return torch.where(flip, -slope, slope)


_HELD = threading.local()     # Flow.held's memo: (flow, mode) as weak references, mode version, Held

EXTRAS_SIGNATURE = "(x, grad, p) -> (B, k) tensor"
HESS_SIGNATURE = ("(x, p) -> R''(x) of the shape of x (a generated kernel with further arguments: "
                  "numerics.bind(kernel, L=...))")


def user_call(name: str, signature: str, fn, args, shape=None):
    """``fn(*args)``, a user function given as argument ``name``, checked to return a tensor of
    ``shape`` (default: that of ``args[0]``; ``None`` entries: any size there). A call that fails
    on its arguments (``TypeError``) or a wrong result raises one error naming ``name`` and its
    ``signature``."""
    try:
        out = fn(*args)
    except TypeError as exc:
        raise TypeError(f"{name} must be a function {signature}; calling it with "
                        f"{len(args)} arguments failed: {exc}") from exc
    shape = tuple(args[0].shape) if shape is None else shape
    ok = isinstance(out, torch.Tensor) and out.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(out.shape, shape))
    if not ok:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        want = "(" + ", ".join("k" if d is None else str(d) for d in shape) + ")"
        raise ValueError(f"{name} must be a function {signature}: it must return a tensor of shape "
                         f"{want}, got {got}")
    return out


def check_loss(loss) -> None:
    """``TypeError`` unless ``loss`` is a :class:`numerics.losses.Loss`."""
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be a numerics.losses.Loss (e.g. SeparableQuadratic(y)), "
                        f"got {type(loss).__name__}")


def uniform_exponent(q) -> float | None:
    """The common value of the exponents ``q`` (a number or ``(B,)``) as a float, or ``None``."""
    if q is None:
        return None
    qt = torch.as_tensor(q, dtype=torch.float64).reshape(-1)
    return float(qt[0]) if bool((qt == qt[0]).all()) else None


class Flow(ODESystem):
    """Shared parts: the loss, the extras, the sliding of separable coordinates.

    A flow is built for the runs it will make and never changes after: ``q`` are their
    exponents (a number or ``(B,)``; ``None``: read per trajectory from ``p["q"]``), whose
    common value ``q_uniform`` (a float or ``None``) selects the exact shortcuts (at uniform
    ``q = 2`` the field is smooth and no switching functions are used); ``stationary_tol`` is
    the relative tolerance of the stationarity test (:meth:`on_switch`). Its switching state is
    ``p.switching``: ``frozen`` (coordinates at rest) and ``t_slide`` (when they got there)."""

    autonomous = True

    def __init__(self, loss: Loss, n: int, extras=(), *, q=None, stationary_tol: float = 1e-9):
        check_loss(loss)
        if not isinstance(extras, (list, tuple)) or not all(callable(e) for e in extras):
            got = type(extras).__name__ if not isinstance(extras, (list, tuple)) else \
                ", ".join(type(e).__name__ for e in extras)
            raise TypeError(f"extras must be a list of functions {EXTRAS_SIGNATURE}, e.g. extras=[f]; got {got}")
        self.loss, self.n, self.extras = loss, n, tuple(extras)
        self.layout = ModeLayout(gradient=n)      # the blocks of switches(), mode and hit
        self.q_uniform = uniform_exponent(q)
        self.stationary_tol = stationary_tol

    @property
    def stiff_capable(self) -> bool:
        """Whether :meth:`jacobian` gives the field's Jacobian (a subclass that derives it, and
        no extras, whose derivatives are unknown)."""
        return not self.extras and type(self).jacobian is not ODESystem.jacobian

    def q_of(self, p, dims: int):
        if self.q_uniform is not None:
            return self.q_uniform
        return p["q"].reshape((-1,) + (1,) * dims)

    @property
    def smooth(self) -> bool:
        return self.q_uniform == 2.0

    def held_signs(self, mode):
        """The signs ``sigma`` the frozen ``mode`` holds for ``phi_q``'s argument (0: not held):
        here ``sign(d_i f)``."""
        return self.layout.block(mode, "gradient")

    def held(self, mode):
        """:func:`~numerics.geometry.hold` of :meth:`held_signs` (``None`` for no mode or no sign
        held). The driver passes one mode tensor to every stage of a step, so it is built once
        per step: kept, per thread, for the last flow and mode tensor seen while that tensor is
        unchanged (its version). The memo lives outside the flow, which a run never changes."""
        if mode is None:
            return None
        memo = getattr(_HELD, "last", None)
        if memo is not None and memo[0]() is self and memo[1]() is mode and memo[2] == mode._version:
            return memo[3]
        value = hold(self.held_signs(mode))
        _HELD.last = (weakref.ref(self), weakref.ref(mode), mode._version, value)
        return value

    def gradient_switches(self, g, p):
        """The gradient components ``d_i f`` as switching functions (0 where not one).

        On a coupled loss with ``1 < q < 2`` they are not switches away from rest: the field is
        continuous in ``d_i f`` (only non-Lipschitz), and a component that hovers near 0 (the flow
        relaxes onto ``d_i f ~ 0`` at a rate ``~ |d_i f|^(q-2)`` that grows without bound) is
        crossed by the steps' errors again and again; locating each crossing and cutting the step
        there multiplied the steps (tests/test_stiff.py). The steppers integrate through such
        points. Near rest (every active component within 10x the stationarity tolerance of
        :meth:`on_switch`) they are switches again, so that the arrival at a stationary point is
        located and frozen. Separable losses keep them: their surfaces are reached and slid on."""
        live = ~p.switching["frozen"]
        if not self.loss.separable:
            near_rest = (g * live).abs().amax(1) <= 10 * self.stationary_tol * p["g_scale"]
            live = live & (~((p["q"] > 1) & (p["q"] < 2)) | near_rest)[:, None]
        return g * live

    def _with_extras(self, dstate, x, g, p):
        """Append the quadratures; a sliding coordinate's effective (Filippov) gradient is 0."""
        if not self.extras:
            return dstate
        g = g * (~p.switching["frozen"])
        return torch.cat([dstate] + [e(x, g, p) for e in self.extras], dim=1)

    def check_user_functions(self, y0, p) -> int:
        """Call each user function once at the start, before the run: a wrong signature or
        return shape raises one error naming the argument and what it must be. Returns the
        number of extra components (the extras' widths together)."""
        x = self.model(y0)
        g = self.loss.grad(x, p)
        return sum(user_call("extras", EXTRAS_SIGNATURE, e, (x, g, p), (x.shape[0], None)).shape[1]
                   for e in self.extras)

    def initialize(self, y0, p) -> Params:
        """The run's :class:`~numerics.integrate.Params` from the problem's parameters ``p`` and
        the start ``y0``: nothing frozen yet (the hybrid sliding flows of
        :class:`numerics.decay.DecayFlow` add their sides and sliding sets)."""
        B = y0.shape[0]
        return Params(p, {"frozen": torch.zeros(B, self.n, dtype=torch.bool, device=y0.device),
                          "t_slide": torch.full((B, self.n), float("nan"), dtype=torch.float64, device=y0.device)})

    def on_switch(self, t, y, p, hit):
        """A coordinate that reaches ``d_i f = 0`` of a separable loss slides there (frozen).
        For a coupled loss, ``q < 2`` reaches stationary points in finite time: when a
        gradient component reaches 0 while every active component is below
        ``stationary_tol * max|grad f(x0)|``, the trajectory is at rest and is frozen (not for
        losses without a stationary point, ``loss.has_minimizer = False``).
        ``p.switching["t_slide"]`` records when."""
        g_hit = self.layout.block(hit, "gradient")
        frozen = p.switching["frozen"]
        if self.loss.separable:
            new = g_hit & ~frozen
            if bool(new.any()):
                y = self._snap(y, p, new)
            return self._freeze(t, p, g_hit), y
        if bool(g_hit.any()) and self.loss.has_minimizer:
            g = self.loss.grad(self.model(y), p).abs() * (~frozen)
            rest = g_hit.any(1) & (g.amax(1) <= self.stationary_tol * p["g_scale"]) & (p["q"] < 2)
            return self._freeze(t, p, rest[:, None] & ~frozen), y
        return p.switching, y

    def _snap(self, y, p, new, iters: int = 8):
        """Move each newly sliding coordinate exactly onto ``d_i f = 0`` along its own flow
        direction (secant steps in the distance ``tau``). The located crossing is off the
        surface by the local error of the cut step; moving along the flow changes the
        conserved quantities only at second order in that error."""
        tau0 = torch.zeros(y.shape[0], self.n, dtype=y.dtype, device=y.device)
        g0 = g_start = self.loss.grad(self.model(y), p)
        tau1 = tau0 + 1e-7 * p["w_scale"][:, None] if "w_scale" in p else tau0 + 1e-7
        g1 = self.loss.grad(self.model(self._move(y, p, tau1 * new)), p)
        for _ in range(iters):
            slope = (g1 - g0) / (tau1 - tau0)
            ok = new & (slope != 0) & torch.isfinite(slope)
            tau2 = torch.where(ok, tau1 - g1 / torch.where(ok, slope, torch.ones_like(slope)), tau1)
            tau0, g0, tau1 = tau1, g1, tau2
            g1 = self.loss.grad(self.model(self._move(y, p, tau1 * new)), p)
        good = new & torch.isfinite(g1) & (g1.abs() <= g_start.abs())   # never move away
        return self._move(y, p, tau1 * good)

    @staticmethod
    def _freeze(t, p, new) -> dict:
        """The switching state of ``p`` with the coordinates ``new`` frozen at ``t``."""
        s = p.switching
        new = new & ~s["frozen"]
        return dict(s, t_slide=torch.where(new, t[:, None], s["t_slide"]), frozen=s["frozen"] | new)


class DeepDiagonalFlow(Flow):
    """Parameter-space steepest flow of ``x_i = prod_k w_ik``; state ``w`` flattened (B, n*L)."""

    def __init__(self, loss: Loss, n: int, L: int, extras=(), saddle_tol: float = 1e-5, **kw):
        super().__init__(loss, n, extras, **kw)
        self.L = L
        self.layout = ModeLayout(gradient=n, factors=n * L)
        self.saddle_tol = saddle_tol

    def split(self, y):
        B = y.shape[0]
        return y[:, : self.n * self.L].reshape(B, self.n, self.L)

    def model(self, y):
        return self.split(y).prod(-1)

    def _move(self, y, p, tau):
        """Factors moved by ``tau`` (per coordinate) along the unit flow direction
        ``sign(r_k)|r_k|^(q-1)``, ``r_k = prod_{j != k} w_j`` (up to the common sign)."""
        w = self.split(y)
        r = exclusive_prod(w)
        v = torch.sign(r) * r.abs() ** (p["q"][:, None, None] - 1)
        v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        w = w + tau[..., None] * v
        return torch.cat([w.reshape(y.shape[0], -1), y[:, self.n * self.L:]], 1)

    def held_signs(self, mode):
        """The frozen signs ``sign(d_i f) prod_{j != k} sign(w_ij)`` of the ``z_ik`` (``(B, n, L)``)."""
        sw = self.layout.block(mode, "factors").reshape(mode.shape[0], self.n, self.L)
        return self.layout.block(mode, "gradient")[..., None] * exclusive_prod(sw)

    def rhs(self, t, y, p, mode):
        B = y.shape[0]
        others, x = exclusive_products(self.split(y).unbind(-1))
        g = self.loss.grad(x, p)
        if self.smooth:                       # q = 2: dw_k = -g r_k, one product per factor
            minus_g = -g
            dw = torch.stack([minus_g * r for r in others], -1)
        else:
            z = g[..., None] * torch.stack(others, -1)
            q = self.q_uniform if self.q_uniform is not None else p["q"][:, None, None]
            dw = frozen_phi(z, q, self.held(mode))
            dw = dw.masked_fill(p.switching["frozen"][..., None], 0).neg()
        return self._with_extras(dw.reshape(B, -1), x, g, p)

    def jacobian(self, t, y, p, mode):
        """``d(dw/dt)/dw`` ``(B, nL, nL)`` with the mode frozen (:func:`numerics.jacobians.parameter_jacobian`)."""
        if not self.stiff_capable:
            return None
        w = self.split(y)
        others, x = exclusive_products(w.unbind(-1))
        r = torch.stack(others, -1)
        g = self.loss.grad(x, p)
        q = self.q_uniform if self.q_uniform is not None else p["q"][:, None, None]
        slope = frozen_slope(g[..., None] * r, q, self.held(mode))
        return parameter_jacobian(r, pair_products(w), g, self.loss.hess(x, p), slope, ~p.switching["frozen"])

    def switches(self, t, y, p):
        if self.smooth:
            return None
        w = self.split(y)
        active = ~p.switching["frozen"]
        g = self.gradient_switches(self.loss.grad(w.prod(-1), p), p)
        return self.layout.join(gradient=g, factors=(w * active[..., None]).reshape(w.shape[0], -1))

    def on_switch(self, t, y, p, hit):
        """Also the saddle rule of :meth:`collapse` on the factors reaching 0."""
        s, y = super().on_switch(t, y, p, hit)
        return self.collapse(t, y, p.with_switching(s), self.layout.block(hit, "factors"))

    def collapse(self, t, y, p, factor_hit):
        """A factor reaching 0 while another factor of the same coordinate is 0 (a balanced
        pair arriving together, up to the conservation error ``saddle_tol``) puts the
        coordinate on the saddle ``x_i = 0``, where every ``d F / d w_ik`` has a zero factor
        (and so does ``z_ik = d_i f r_ik + nu w_ik`` of coupled decay): a stationary point.
        Those factors are set to 0 and the coordinate frozen. Returns ``(switching, y)``."""
        s = p.switching
        factor_hit = factor_hit.reshape(-1, self.n, self.L)
        if self.L < 2 or not bool(factor_hit.any()):
            return s, y
        w = self.split(y)
        near = w.abs() <= self.saddle_tol * p["w_scale"][:, None, None]
        collapse = factor_hit.any(-1) & (near.sum(-1) >= 2) & ~s["frozen"]
        if bool(collapse.any()):
            w = torch.where(collapse[..., None] & near, torch.zeros_like(w), w)
            y = torch.cat([w.reshape(w.shape[0], -1), y[:, self.n * self.L:]], 1)
            s = self._freeze(t, p, collapse)
        return s, y


class MirrorFlow(Flow):
    """Model-space steepest mirror flow ``dx_i/dt = -phi_q(d_i f)/R''(x_i)``; state ``x``."""

    def __init__(self, loss: Loss, n: int, hess, extras=(), **kw):
        super().__init__(loss, n, extras, **kw)
        self.hess = hess          # (x, p) -> R''(x), e.g. a generated kernel with bound parameters

    def split(self, y):
        return y[:, : self.n]

    def model(self, y):
        return y[:, : self.n]

    def check_user_functions(self, y0, p):
        user_call("hess", HESS_SIGNATURE, self.hess, (y0[:, : self.n], p))
        return super().check_user_functions(y0, p)

    def _move(self, y, p, tau):
        return torch.cat([y[:, : self.n] + tau, y[:, self.n:]], 1)

    def rhs(self, t, y, p, mode):
        x = y[:, : self.n]
        g = self.loss.grad(x, p)
        dx = -frozen_phi(g, self.q_of(p, 1), self.held(mode)) / self.hess(x, p) * (~p.switching["frozen"])
        return self._with_extras(dx, x, g, p)

    def mobility(self, x, p):
        """``1/R''(x)`` and its derivative (forward-mode differentiation of the user's ``R''``)."""
        return forward.jvp(lambda xx: 1 / self.hess(xx, p), (x,), (torch.ones_like(x),))

    def jacobian(self, t, y, p, mode):
        """``d(dx/dt)/dx`` with the mode frozen: ``(B, n, n)`` (:func:`numerics.jacobians.mirror_jacobian`),
        or diagonal plus low rank where the loss's Hessian has rank ``r < n``
        (:func:`numerics.jacobians.mirror_jacobian_low_rank`)."""
        if not self.stiff_capable:
            return None
        x = y[:, : self.n]
        g = self.loss.grad(x, p)
        q = self.q_of(p, 1)
        held = self.held(mode)
        mob, dmob = self.mobility(x, p)
        factor = self.loss.hess_factor(x, p)
        if factor is not None and factor[0].shape[-1] < self.n:
            return mirror_jacobian_low_rank(*factor, frozen_slope(g, q, held), mob, dmob,
                                            frozen_phi(g, q, held), ~p.switching["frozen"])
        return mirror_jacobian(g, self.loss.hess(x, p), frozen_slope(g, q, held), mob, dmob,
                               frozen_phi(g, q, held), ~p.switching["frozen"])

    def switches(self, t, y, p):
        if self.smooth:
            return None
        x = y[:, : self.n]
        return self.layout.join(gradient=self.gradient_switches(self.loss.grad(x, p), p))



class BalancedReduction(MirrorFlow):
    """The deep diagonal flow from a balanced start, integrated in its ``n`` mirror coordinates
    (MIR-1) instead of its ``nL`` factors.

    Without decay ``|w_ik|^q - |w_ij|^q`` is conserved (BAL-1), so a balanced start stays
    balanced, ``|w_ik| = |x_i|^(1/L)``, and ``x`` solves ``dx_i/dt = -phi_q(d_i f) L|x_i|^m``
    exactly. A factor reaches 0 only together with the others of its coordinate, at the saddle
    ``x_i = 0``, where the coordinate stops (as the parameter flow's saddle rule does); so each
    factor keeps its starting sign ``p["w_sign"]`` and ``w_ik = sign_ik |x_i|^(1/L)``. Switching
    functions: ``d_i f`` and, for ``L >= 2``, ``x_i``. At ``L = 1`` there is no saddle
    (``x = w``, mobility 1): ``x_i`` crosses 0 like any other value and is its own factor."""

    def __init__(self, loss: Loss, n: int, L: int, **kw):
        super().__init__(loss, n, self.inverse_mobility, **kw)
        self.L = L
        if L >= 2:
            self.layout = ModeLayout(gradient=n, x=n)

    def inverse_mobility(self, x, p):
        return 1 / K.mir1_mobility(x, self.L, self.q_of(p, 1))

    def mobility(self, x, p):
        q = self.q_of(p, 1)
        return K.mir1_mobility(x, self.L, q), K.mir1_mobility_prime(x, self.L, q)

    def rhs(self, t, y, p, mode):
        x = y[:, : self.n]
        g = self.loss.grad(x, p)
        q = self.q_of(p, 1)
        return -frozen_phi(g, q, self.held(mode)) * K.mir1_mobility(x, self.L, q) * (~p.switching["frozen"])

    def switches(self, t, y, p):
        if self.smooth:
            return None
        x = y[:, : self.n]
        gradient = self.gradient_switches(self.loss.grad(x, p), p)
        if self.L == 1:
            return self.layout.join(gradient=gradient)
        return self.layout.join(gradient=gradient, x=x * ~p.switching["frozen"])

    def on_switch(self, t, y, p, hit):
        """Also (``L >= 2``): a coordinate reaching ``x_i = 0`` is at the saddle and stops there."""
        s, y = super().on_switch(t, y, p, hit)
        if self.L == 1:
            return s, y
        saddle = self.layout.block(hit, "x") & ~s["frozen"]
        if bool(saddle.any()):
            y = torch.where(saddle, torch.zeros_like(y), y)
            s = self._freeze(t, p.with_switching(s), saddle)
        return s, y

    def factors(self, x, p):
        """The factors ``(B, n, L)`` of states ``x``."""
        if self.L == 1:
            return x[..., None]
        return p["w_sign"] * (x.abs() ** (1.0 / self.L))[..., None]


def balanced_start(w0: torch.Tensor) -> torch.Tensor:
    """Per trajectory: whether ``|w_ik(0)|`` is the same for every factor ``k`` (to 4 ulp)."""
    a = w0.abs()
    return ((a - a[..., :1]).abs() <= 4 * torch.finfo(a.dtype).eps * a[..., :1]).all(-1).all(-1)


class ScalarFlow(Flow):
    """Parameter-space steepest flow of a scalar model ``x_i = g(w_i)`` (MIR-5):
    ``dw_i/dt = -phi_q(d_i f(x) g'(w_i))``; ``g``/``dg`` are generated kernels."""

    def __init__(self, loss: Loss, n: int, g, dg, extras=(), **kw):
        super().__init__(loss, n, extras, **kw)
        self.g, self.dg = g, dg
        self.layout = ModeLayout(gradient=n, dg=n)

    def split(self, y):
        return y[:, : self.n]

    def model(self, y):
        return self.g(y[:, : self.n])

    def check_user_functions(self, y0, p):
        for name, fn in (("g", self.g), ("dg", self.dg)):
            user_call(name, f"w -> {name}(w) of the shape of w", fn, (y0[:, : self.n],))
        return super().check_user_functions(y0, p)

    def _move(self, y, p, tau):
        return torch.cat([y[:, : self.n] + tau, y[:, self.n:]], 1)

    def held_signs(self, mode):
        """``sign(d_i f) sign(g'(w_i))``, the frozen sign of ``d F / d w_i``."""
        return self.layout.block(mode, "gradient") * self.layout.block(mode, "dg")

    def rhs(self, t, y, p, mode):
        w = y[:, : self.n]
        x = self.g(w)
        g = self.loss.grad(x, p)
        dg = self.dg(w)
        dw = -frozen_phi(g * dg, self.q_of(p, 1), self.held(mode)) * (~p.switching["frozen"])
        return self._with_extras(dw, x, g, p)

    def switches(self, t, y, p):
        if self.smooth:
            return None
        w = y[:, : self.n]
        active = ~p.switching["frozen"]
        return self.layout.join(gradient=self.loss.grad(self.g(w), p) * active, dg=self.dg(w) * active)



class BranchLoss(Loss):
    """The loss of the ``2n`` branch outputs ``(A, B)`` of the two-branch model ``x = A - B``:
    ``f(A - B)``, gradient ``(d f, -d f)``. Both halves vanish together, so sliding and
    stationarity are decided for a coordinate's two branches at once."""

    def __init__(self, loss: Loss, n: int):
        self.base, self.n = loss, n
        self.separable, self.has_minimizer = loss.separable, loss.has_minimizer
        self.quadratic = loss.quadratic

    def params(self, batch, device):
        return self.base.params(batch, device)

    def value(self, ab, p):
        return self.base.value(ab[:, : self.n] - ab[:, self.n:], p)

    def grad(self, ab, p):
        g = self.base.grad(ab[:, : self.n] - ab[:, self.n:], p)
        return torch.cat([g, -g], 1)

    def hess(self, ab, p):
        """``[[H, -H], [-H, H]]`` from the base loss's Hessian ``H``."""
        H = self.base.hess(ab[:, : self.n] - ab[:, self.n:], p)
        return torch.cat([torch.cat([H, -H], 2), torch.cat([-H, H], 2)], 1)

    def hess_factor(self, ab, p):
        """``([U; -U], c)`` from the base loss's factor ``(U, c)``, or ``None``."""
        factor = self.base.hess_factor(ab[:, : self.n] - ab[:, self.n:], p)
        return None if factor is None else (torch.cat([factor[0], -factor[0]], 0), factor[1])
