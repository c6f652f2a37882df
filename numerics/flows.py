"""Steepest flows as batched ODE systems, and the functions that simulate them.

* parameter space, deep diagonal ``x_i = prod_k w_ik``:
  ``dw_ik/dt = -phi_q(d_i f(x) prod_{j != k} w_ij)``;
* model space, steepest mirror flow: ``dx_i/dt = -phi_q(d_i f(x)) / R''(x_i)``.

``phi_q`` is the generated kernel. Switching functions are the gradient components
``d_i f`` and (parameter space) the factors ``w_ik``; the integrator freezes their signs
inside each step and locates their zeros (see :mod:`numerics.integrate.rk`). For a
separable loss a coordinate that reaches ``d_i f = 0`` slides: by Filippov's convex
combination (weight 1/2 on each side, ``q = 1``) or by continuity of ``phi_q`` (``q > 1``)
its velocity on the surface is 0, so it is frozen there.

``extras`` are quadratures integrated alongside the state (appended components, under the
same error control): callables ``(x, grad, p) -> (B, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import validate
from ._generated import torch_kernels as K
from .arrays import float64
from .integrate import ODESystem, Solution, integrate
from .losses import Loss


def resolve_device(device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return dev


def exclusive_products(ws) -> tuple[list, torch.Tensor]:
    """For factors ``w_1..w_L`` (a sequence of equal-shape tensors): the products
    ``prod_{j != k} w_j`` (a list) and the full product ``x``, by prefix and suffix products
    (no division, so exact where a factor is 0). Taking the factors as views
    ``w.unbind(-1)`` and stacking the results last keeps every tensor of a batched field in
    the integrator's row-major layout (no transposing copies)."""
    L = len(ws)
    if L == 1:
        return [torch.ones_like(ws[0])], ws[0]
    pre = [None, ws[0]]
    for k in range(1, L - 1):
        pre.append(pre[-1] * ws[k])
    suf = [ws[L - 1]]
    for k in range(L - 2, 0, -1):
        suf.append(suf[-1] * ws[k])
    suf = suf[::-1] + [None]
    return [suf[0]] + [pre[k] * suf[k] for k in range(1, L - 1)] + [pre[L - 1]], pre[L - 1] * ws[L - 1]


def exclusive_prod(w: torch.Tensor) -> torch.Tensor:
    """``prod_{j != k} w_j`` over the last axis, without dividing (exact at ``w_k = 0``)."""
    return torch.stack(exclusive_products(w.unbind(-1))[0], -1)


def phi(z, q):
    """The generated ``phi_q``; ``q`` a float or a tensor broadcasting against ``z``.
    Exact shortcuts for uniform ``q = 2`` (identity) and ``q = 1`` (sign)."""
    if isinstance(q, float):
        if q == 2.0:
            return z
        if q == 1.0:
            return torch.sign(z)
    return K.phi(z, q)


def frozen_phi(z, q, sigma, all_held: bool = False):
    """``phi_q(z)`` with the sign held at ``sigma`` where ``sigma != 0`` (mode freezing);
    ``all_held``: the caller knows that no entry of ``sigma`` is 0."""
    if sigma is None:
        return phi(z, q)
    sign = sigma if all_held else torch.where(sigma != 0, sigma, torch.sign(z))
    return sign * phi(z.abs(), q)


class _Flow(ODESystem):
    """Shared parts: the loss, the extras, the sliding of separable coordinates.

    ``q_uniform`` is the common exponent of the batch (a float) or ``None``; at uniform
    ``q = 2`` the field is smooth and no switching functions are used."""

    autonomous = True

    def __init__(self, loss: Loss, n: int, extras=()):
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a numerics.losses.Loss (e.g. SeparableQuadratic(y)), "
                            f"got {type(loss).__name__}")
        self.loss, self.n, self.extras = loss, n, tuple(extras)
        _callables(extras=self.extras)
        self.n_extra = 0
        self.q_uniform = None
        self.stationary_tol = 1e-9

    def q_of(self, p, dims: int):
        if self.q_uniform is not None:
            return self.q_uniform
        return p["q"].reshape((-1,) + (1,) * dims)

    @property
    def smooth(self) -> bool:
        return self.q_uniform == 2.0

    def _with_extras(self, dstate, x, g, p):
        """Append the quadratures; a sliding coordinate's effective (Filippov) gradient is 0."""
        if not self.extras:
            return dstate
        g = g * (~p["frozen"])
        return torch.cat([dstate] + [e(x, g, p) for e in self.extras], dim=1)

    def _count_extras(self, x, p):
        g = self.loss.grad(x, p)
        self.n_extra = sum(e(x, g, p).shape[1] for e in self.extras)

    def initialize(self, y0, p):
        """Set up per-trajectory state from the start (``(p, y0)``); the hybrid sliding flows
        (:class:`numerics.decay.DecayFlow`) use it, the others keep ``p`` as it is."""
        return p, y0

    def on_switch(self, t, y, p, hit):
        """A coordinate that reaches ``d_i f = 0`` of a separable loss slides there (frozen).
        For a coupled loss, ``q < 2`` reaches stationary points in finite time: when a
        gradient component reaches 0 while every active component is below
        ``stationary_tol * max|grad f(x0)|``, the trajectory is at rest and is frozen (not for
        losses without a stationary point, ``loss.has_minimizer = False``).
        ``p["t_slide"]`` records when."""
        g_hit = hit[:, : self.n]
        if self.loss.separable:
            new = g_hit & ~p["frozen"]
            if bool(new.any()):
                y = self._snap(y, p, new)
            return self._freeze(t, p, g_hit), y
        if bool(g_hit.any()) and self.loss.has_minimizer:
            g = self.loss.grad(self.model(y), p).abs() * (~p["frozen"])
            rest = g_hit.any(1) & (g.amax(1) <= self.stationary_tol * p["g_scale"]) & (p["q"] < 2)
            p = self._freeze(t, p, rest[:, None] & ~p["frozen"])
        return p, y

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
    def _freeze(t, p, new):
        p = dict(p)
        new = new & ~p["frozen"]
        p["t_slide"] = torch.where(new, t[:, None], p["t_slide"])
        p["frozen"] = p["frozen"] | new
        return p


class DeepDiagonalFlow(_Flow):
    """Parameter-space steepest flow of ``x_i = prod_k w_ik``; state ``w`` flattened (B, n*L)."""

    def __init__(self, loss: Loss, n: int, L: int, extras=(), saddle_tol: float = 1e-5):
        super().__init__(loss, n, extras)
        self.L = L
        self.saddle_tol = saddle_tol
        self._held = None

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
        """The frozen signs ``sign(d_i f) prod_{j != k} sign(w_ij)`` of the ``z_ik`` (``(B, n, L)``)
        and whether none is 0. The integrator passes one mode object to all the stages of a
        step, so they are computed once per mode (an identity-keyed memo)."""
        if self._held is None or self._held[0] is not mode:
            sw = mode[:, self.n:].reshape(mode.shape[0], self.n, self.L)
            sigma = mode[:, : self.n, None] * exclusive_prod(sw)
            self._held = (mode, sigma, bool((sigma != 0).all()))
        return self._held[1:]

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
            dw = phi(z, q) if mode is None else frozen_phi(z, q, *self.held_signs(mode))
            dw = dw.masked_fill(p["frozen"][..., None], 0).neg()
        return self._with_extras(dw.reshape(B, -1), x, g, p)

    def switches(self, t, y, p):
        if self.smooth:
            return None
        w = self.split(y)
        active = ~p["frozen"]
        g = self.loss.grad(w.prod(-1), p) * active
        return torch.cat([g, (w * active[..., None]).reshape(w.shape[0], -1)], dim=1)

    def on_switch(self, t, y, p, hit):
        """Also: a factor reaching 0 while another factor of the same coordinate is 0 (a
        balanced pair arriving together, up to the conservation error ``saddle_tol``) puts
        the coordinate on the saddle ``x_i = 0``, where every ``d F / d w_ik`` has a zero
        factor: a stationary point. Those factors are set to 0 and the coordinate frozen."""
        p, y = super().on_switch(t, y, p, hit)
        factor_hit = hit[:, self.n:].reshape(-1, self.n, self.L)
        if self.L < 2 or not bool(factor_hit.any()):
            return p, y
        w = self.split(y)
        near = w.abs() <= self.saddle_tol * p["w_scale"][:, None, None]
        collapse = factor_hit.any(-1) & (near.sum(-1) >= 2) & ~p["frozen"]
        if bool(collapse.any()):
            w = torch.where(collapse[..., None] & near, torch.zeros_like(w), w)
            y = torch.cat([w.reshape(w.shape[0], -1), y[:, self.n * self.L:]], 1)
            p = self._freeze(t, p, collapse)
        return p, y



class MirrorFlow(_Flow):
    """Model-space steepest mirror flow ``dx_i/dt = -phi_q(d_i f)/R''(x_i)``; state ``x``."""

    def __init__(self, loss: Loss, n: int, hess, extras=()):
        super().__init__(loss, n, extras)
        self.hess = hess          # (x, p) -> R''(x), e.g. a generated kernel with bound parameters

    def split(self, y):
        return y[:, : self.n]

    def model(self, y):
        return y[:, : self.n]

    def _move(self, y, p, tau):
        return torch.cat([y[:, : self.n] + tau, y[:, self.n:]], 1)

    def rhs(self, t, y, p, mode):
        x = y[:, : self.n]
        g = self.loss.grad(x, p)
        dx = -frozen_phi(g, self.q_of(p, 1), mode) / self.hess(x, p) * (~p["frozen"])
        return self._with_extras(dx, x, g, p)

    def switches(self, t, y, p):
        if self.smooth:
            return None
        x = y[:, : self.n]
        return self.loss.grad(x, p) * (~p["frozen"])



class ScalarFlow(_Flow):
    """Parameter-space steepest flow of a scalar model ``x_i = g(w_i)`` (MIR-5):
    ``dw_i/dt = -phi_q(d_i f(x) g'(w_i))``; ``g``/``dg`` are generated kernels."""

    def __init__(self, loss: Loss, n: int, g, dg, extras=()):
        super().__init__(loss, n, extras)
        self.g, self.dg = g, dg

    def split(self, y):
        return y[:, : self.n]

    def model(self, y):
        return self.g(y[:, : self.n])

    def _move(self, y, p, tau):
        return torch.cat([y[:, : self.n] + tau, y[:, self.n:]], 1)

    def rhs(self, t, y, p, mode):
        w = y[:, : self.n]
        x = self.g(w)
        g = self.loss.grad(x, p)
        dg = self.dg(w)
        sigma = None if mode is None else mode[:, : self.n] * mode[:, self.n:]
        dw = -frozen_phi(g * dg, self.q_of(p, 1), sigma) * (~p["frozen"])
        return self._with_extras(dw, x, g, p)

    def switches(self, t, y, p):
        if self.smooth:
            return None
        w = y[:, : self.n]
        active = ~p["frozen"]
        return torch.cat([self.loss.grad(self.g(w), p) * active, self.dg(w) * active], 1)



@dataclass
class FlowResult:
    """A simulated batch: the integrator's ``Solution`` plus model-level views."""

    solution: Solution
    system: _Flow
    state_dim: int

    @property
    def t(self):
        return self.solution.t

    @property
    def state(self):
        return self.solution.y[:, : self.state_dim]

    @property
    def extras(self):
        return self.solution.y[:, self.state_dim:]

    @property
    def x(self):
        return self.system.model(self.state)

    @property
    def w(self):
        return self.system.split(self.state)

    def ok(self) -> bool:
        return bool(self.solution.success.all())

    def raise_on_failure(self):
        fails = self.solution.failures()
        if fails:
            desc = ", ".join(f"{v} x {k}" for k, v in fails.items())
            raise RuntimeError(f"simulation failed for some trajectories: {desc}")
        return self


def factors(w0, device):
    """The starting factors ``w0`` as a finite float64 tensor ``(B, n, L)`` on ``device``."""
    w0 = float64(w0, "w0", device)
    if w0.ndim != 3:
        raise ValueError(f"w0 must have shape (batch, n, L), got {tuple(w0.shape)}")
    if not bool(torch.isfinite(w0).all()):
        raise ValueError("w0 must be finite")
    validate.depth(w0.shape[2], "L (w0.shape[2])")
    return w0


def _callables(**named):
    """Refuse non-callable user functions (``extras`` is a sequence of them), naming them."""
    for name, fn in named.items():
        for f in (fn if name == "extras" else (fn,)):
            if not callable(f):
                raise TypeError(f"{name} must be {'functions' if name == 'extras' else 'a function'}, "
                                f"got {type(f).__name__}")


def _q_tensor(q, B, device):
    qt = float64(q, "q", device)
    qt = qt.expand(B).clone() if qt.ndim == 0 else qt
    if qt.shape != (B,):
        raise ValueError(f"q must be a number or have one entry per trajectory ({B}), got {tuple(qt.shape)}")
    if not bool(((qt >= 1) & (qt <= 2)).all()):
        raise ValueError(f"q must lie in [1, 2] (1 = sign descent, 2 = gradient flow), got "
                         f"{qt.min().item()}..{qt.max().item()}")
    return qt


def _setup(system, y0, q, loss, *, device, rtol, params=None):
    """The per-trajectory parameter dict of a run of ``system`` from ``y0`` (and ``y0``)."""
    B = y0.shape[0]
    p = {"q": _q_tensor(q, B, device), "frozen": torch.zeros(B, system.n, dtype=torch.bool, device=device),
         "t_slide": torch.full((B, system.n), float("nan"), dtype=torch.float64, device=device)}
    p.update(loss.params(B, device))
    for k, v in (params or {}).items():
        v = torch.as_tensor(v, device=device)
        if v.shape[:1] != (B,):
            raise ValueError(f"parameter {k!r} must have one row per trajectory ({B}), got {tuple(v.shape)}")
        p[k] = v
    if bool((p["q"] == p["q"][0]).all()):
        system.q_uniform = float(p["q"][0])
    # gradient scale for the stationarity test: 1e3 x rtol of the initial gradient
    system.stationary_tol = 1e3 * rtol
    p["g_scale"] = loss.grad(system.model(y0), p).abs().amax(1).clamp_min(1e-300)
    return system.initialize(y0, p)


def _run(system, y0, q, loss, t_end, *, device, extras_dim, rtol, atol, params=None, **kw):
    B = y0.shape[0]
    p, y0 = _setup(system, y0, q, loss, device=device, rtol=rtol, params=params)
    validate.positive(rtol, "rtol")
    validate.nonnegative(atol, "atol")
    if system.extras:
        system._count_extras(system.model(y0), p)
        y0 = torch.cat([y0, torch.zeros(B, system.n_extra, dtype=torch.float64, device=device)], 1)
    t_end = float64(t_end, "t_end", device)
    if not bool(torch.isfinite(t_end).all()) or bool((t_end < 0).any()):
        raise ValueError("t_end must be finite and >= 0")
    sol = integrate(system, 0.0, y0, t_end, p, rtol=rtol, atol=atol, **kw)
    return FlowResult(sol, system, extras_dim)


def simulate_parameter_flow(w0, q, loss: Loss, t_end, *, device="cpu", extras=(), rtol=1e-10,
                            atol=1e-12, decay=None, nu=0.0, schedule=None, **kw) -> FlowResult:
    """Simulate the deep diagonal steepest flow from ``w0`` of shape ``(B, n, L)``.

    ``decay``: ``None``, ``"decoupled"`` (``dw/dt = -phi_q(dF/dw) - nu(t) w``) or ``"coupled"``
    (``dw/dt = -phi_q(dF/dw + nu(t) w)``) with ``nu(t) = nu * schedule(t)``: ``nu`` a number
    or ``(B,)``, ``schedule`` ``None`` or a torch function ``t (B,) -> (B,)``; see
    :class:`numerics.decay.DecayFlow` (Filippov sliding at ``q = 1``).

    ``q``: number or ``(B,)``; ``t_end``: number or ``(B,)``; ``params``: extra per-trajectory
    tensors made available to kernels, events and extras as ``p[name]``; remaining keywords
    go to :func:`numerics.integrate.rk.integrate` (``events``, ``t_eval``, ``dense``,
    ``max_steps``, ``max_wall``, ``progress``).
    """
    dev = resolve_device(device)
    w0 = factors(w0, dev)
    B, n, L = w0.shape
    # a balanced pair keeps |u|^q - |v|^q = 0 to ~100 rtol, so it arrives at 0 together to within
    # (100 rtol)^(1/q) <= sqrt(100 rtol) of the factors' scale
    saddle_tol = (100 * rtol) ** 0.5
    scale = w0.abs().reshape(B, -1).amax(1).clamp_min(1e-300)
    params = {"w_scale": scale, **kw.pop("params", {})}
    if decay is None and schedule is None and isinstance(nu, (int, float)) and nu == 0:
        system = DeepDiagonalFlow(loss, n, L, extras, saddle_tol=saddle_tol)
    else:
        from .decay import DecayFlow

        validate.choice(decay, ("decoupled", "coupled"), "decay")
        if schedule is not None:
            _callables(schedule=schedule)
        nu_t = float64(nu, "nu", dev)
        if nu_t.ndim > 1 or nu_t.ndim == 1 and nu_t.shape[0] != B:
            raise ValueError(f"nu must be a number or have one entry per trajectory ({B}), got {tuple(nu_t.shape)}")
        nu_t = nu_t.expand(B).clone()
        if not bool((torch.isfinite(nu_t) & (nu_t >= 0)).all()):
            raise ValueError("nu must be finite and >= 0 (a number or one entry per trajectory)")
        if decay == "coupled" and schedule is None and not bool(nu_t.any()):
            decay = "decoupled"          # nu = 0: the same flow; its surfaces d_i f = 0 are not degenerate
        system = DecayFlow(loss, n, L, decay, schedule, extras, saddle_tol=saddle_tol)
        params["nu"] = nu_t
    return _run(system, w0.reshape(B, n * L), q, loss, t_end, device=dev, extras_dim=n * L,
                rtol=rtol, atol=atol, params=params, **kw)


def simulate_scalar_flow(w0, q, loss: Loss, g, dg, t_end, *, device="cpu", extras=(), rtol=1e-10,
                         atol=1e-12, **kw) -> FlowResult:
    """Simulate the scalar model ``x = g(w)`` from ``w0`` of shape ``(B, n)``."""
    dev = resolve_device(device)
    w0 = float64(w0, "w0", dev)
    if w0.ndim != 2:
        raise ValueError(f"w0 must have shape (batch, n), got {tuple(w0.shape)}")
    _callables(g=g, dg=dg)
    system = ScalarFlow(loss, w0.shape[1], g, dg, extras)
    return _run(system, w0, q, loss, t_end, device=dev, extras_dim=w0.shape[1], rtol=rtol, atol=atol, **kw)


def simulate_mirror_flow(x0, q, loss: Loss, hess, t_end, *, device="cpu", extras=(), rtol=1e-10,
                         atol=1e-12, **kw) -> FlowResult:
    """Simulate ``dx/dt = -phi_q(grad f)/R''(x)`` from ``x0`` of shape ``(B, n)``;
    ``hess(x, p)`` returns ``R''`` (e.g. a generated kernel with bound parameters)."""
    dev = resolve_device(device)
    x0 = float64(x0, "x0", dev)
    if x0.ndim != 2:
        raise ValueError(f"x0 must have shape (batch, n), got {tuple(x0.shape)}")
    _callables(hess=hess)
    system = MirrorFlow(loss, x0.shape[1], hess, extras)
    return _run(system, x0, q, loss, t_end, device=dev, extras_dim=x0.shape[1], rtol=rtol, atol=atol, **kw)


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


@dataclass
class TwoBranchResult(FlowResult):
    """A simulated two-branch batch: ``x = A - B``; ``w`` holds the ``(B, 2n, L)`` factors, ``u``
    rows first."""

    @property
    def x(self):
        ab = self.system.model(self.state)
        n = ab.shape[1] // 2
        return ab[:, :n] - ab[:, n:]


def simulate_two_branch_flow(u0, v0, q, loss: Loss, t_end, **kw) -> TwoBranchResult:
    """Simulate the two-branch model ``x_i = prod_k u_ik - prod_k v_ik`` from ``u0``, ``v0`` of
    shape ``(B, n, L)``: the deep diagonal flow of :func:`simulate_parameter_flow` (same keywords,
    decay included) of the ``2n`` branch outputs under ``f(A - B)``. Events and extras see the
    ``2n`` branch outputs."""
    u0 = float64(u0, "u0")
    v0 = float64(v0, "v0")
    if u0.ndim != 3 or u0.shape != v0.shape:
        raise ValueError(f"u0 and v0 must have the same shape (batch, n, L), got {tuple(u0.shape)} "
                         f"and {tuple(v0.shape)}")
    res = simulate_parameter_flow(torch.cat([u0, v0], 1), q, BranchLoss(loss, u0.shape[1]), t_end, **kw)
    return TwoBranchResult(res.solution, res.system, res.state_dim)
