"""Simulating the steepest flows of :mod:`numerics.flows` (and :mod:`numerics.decay`): the model
the run integrates (factors, mirror coordinates, the exact sign flow), the stepper rule, and the
results' model-level views. The set-up shared with :mod:`numerics.sign` is :mod:`numerics.runs`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from . import validate
from .arrays import float64
from .decay import DecayFlow
from .flows import (BalancedReduction, BranchLoss, DeepDiagonalFlow, Flow, MirrorFlow, ScalarFlow,
                    balanced_start, check_loss)
from .integrate import integrate
from .losses import Loss, check_dimension
from .runs import FlowResult, end_times, exponents, factors, flow_options, resolve_device, setup_run
from .sign import simulate_sign_flow


STIFF_Q = 1.75          # the smallest exponent for which the default is the stiff stepper in the factors ...
STIFF_Q_MIRROR = 1.5    # ... and in mirror coordinates (BalancedReduction)
STIFF_Q_DECAY = 1.5     # ... and with weight decay (DecayFlow)


def default_method(system: Flow, q: torch.Tensor) -> str:
    """The stepper a simulation uses unless one is named: ``"rodas5"`` (stiff, Rosenbrock) on a
    coupled loss whose field has a derived Jacobian, when every exponent lies in ``[STIFF_Q, 2)``,
    or in ``[STIFF_Q_MIRROR, 2)`` for a flow integrated in its mirror coordinates
    (:class:`BalancedReduction`, ``n`` instead of ``nL`` unknowns: each Rosenbrock step factors an
    ``n x n`` matrix, or an ``r x r`` one for a loss of Hessian rank ``r < n``) or for a weight-decay
    flow (:class:`DecayFlow`, ``STIFF_Q_DECAY``: ``-nu w`` makes the approach to equilibrium stiff);
    ``"dop853"`` otherwise (smooth ``q = 2``, piecewise-constant sign fields at ``q = 1``, separable
    losses, whose surfaces are reached and slid on, and smaller ``q``, where hovering gradient
    components cost Rodas5 more rejected steps than DOP853).

    Measured on the paper-size regression (k = 300, n = 100, L = 3, alpha = 0.05, one trajectory):
    at ``q = 1.75`` in the factors Rodas5 reaches t = 50 in 345 steps where DOP853 stops at t = 41.5
    (120 s); at ``q = 1.5`` in the factors neither finishes in 120 s. In mirror coordinates at
    ``q = 1.5``: Rodas5 reaches t = 50 in 2,703 trials (23 s at load 3.5) where DOP853 needs 8,000
    trials to reach t = 7.6 (35 s): the flow turns stiff once the support coordinates grow
    (spectral radius 1.2e2 at t = 3, 8.4e3 at t = 5). At ``q = 1.25`` in mirror coordinates neither
    finishes: in 20,000 trials DOP853 reaches t = 2.02 (60 s), Rodas5 t = 1.84 (268 s). With weight
    decay (``verify.experiments``' regression batches, 4 starts, 48 factors, ``nu = 1e-3``, t to 100,
    load about 5): at ``q = 1.5`` decoupled Rodas5 finishes all in 18 s (602..1,278 steps) where DOP853
    reaches t = 1.9..18 in 20 s (coupled: t = 4.2..29 against 0.08..24, neither finishes); at
    ``q = 1.75`` Rodas5 finishes in 7.7 s (decoupled) and 9.1 s (coupled) against DOP853's 13.4 s and
    8.6 s, in 0.2..0.86x DOP853's trials (accepted + rejected steps)."""
    qt = torch.as_tensor(q)
    low = STIFF_Q_MIRROR if isinstance(system, BalancedReduction) else STIFF_Q_DECAY if isinstance(
        system, DecayFlow) else STIFF_Q
    stiff = bool(((qt >= low) & (qt < 2)).all()) and not system.loss.separable and system.stiff_capable
    return "rodas5" if stiff else "dop853"


def _states(v, name, loss, device):
    """A start ``(batch, n)`` as float64 on ``device``, its shape checked against ``loss``."""
    v = float64(v, name, device)
    if v.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, n), got {tuple(v.shape)}")
    check_loss(loss)
    check_dimension(loss, v.shape, name, "batch, n")
    return v


def _run(system, y0, q, loss, t_end, *, device, extras_dim, rtol, atol, params=None, **kw):
    B = y0.shape[0]
    p, n_extra = setup_run(system, y0, q, loss, device=device, params=params)
    validate.positive(rtol, "rtol")
    validate.nonnegative(atol, "atol")
    if system.extras:
        y0 = torch.cat([y0, torch.zeros(B, n_extra, dtype=torch.float64, device=device)], 1)
    t_end = end_times(t_end, B, device)
    method = kw.pop("method", None) or default_method(system, p["q"])
    sol = integrate(system, 0.0, y0, t_end, p.problem, switching=p.switching, rtol=rtol, atol=atol,
                    method=method, **kw)
    return FlowResult(sol, system, extras_dim)


def simulate_parameter_flow(w0, q, loss: Loss, t_end, *, device="cpu", extras=(), rtol=1e-10,
                            atol=1e-12, decay=None, nu=0.0, schedule=None, **kw) -> FlowResult:
    """Simulate the deep diagonal steepest flow from ``w0`` of shape ``(B, n, L)``.

    ``decay``: ``None``, ``"decoupled"`` (``dw/dt = -phi_q(dF/dw) - nu(t) w``) or ``"coupled"``
    (``dw/dt = -phi_q(dF/dw + nu(t) w)``) with ``nu(t) = nu * schedule(t)``: ``nu`` a number
    or ``(B,)``, ``schedule`` ``None`` or a torch function ``t (B,) -> (B,)``; see
    :class:`numerics.decay.DecayFlow` (Filippov sliding at ``q = 1``).

    ``q``: number or ``(B,)``; ``t_end``: number or ``(B,)``; ``extras``: a list of quadratures
    integrated with the state, each ``f(x, grad, p) -> (B, k)`` (``x`` ``(B, n)``, ``grad`` the
    loss gradient at ``x``), read back as ``result.extras``; ``params``: extra per-trajectory
    tensors made available to kernels, events and extras as ``p[name]``; remaining keywords
    go to :func:`numerics.integrate.integrate` (``events``, ``t_eval``, ``dense``,
    ``max_steps``, ``max_wall``, ``progress``, ``method``).

    ``method``: the stepper, by default :func:`default_method` (Rodas5 for coupled losses with
    ``1 < q < 2``, DOP853 otherwise), or ``"sign"``: the exact event-to-event sign flow, the
    default for ``q = 1`` on a coupled quadratic loss (:func:`_use_sign_flow`; its result's
    ``solution.n_steps`` counts events). ``reduce``: integrate a balanced, undecayed start in its
    ``n`` mirror coordinates (MIR-1, :class:`BalancedReduction`) instead of ``nL`` factors;
    ``None`` (default) does so where it is exact and the flow is stiff (:func:`_use_reduction`),
    ``True`` demands it, ``False`` refuses it. The result's ``w`` is the factors either way.
    """
    check_loss(loss)
    dev = resolve_device(device)
    w0 = factors(w0, dev)
    check_dimension(loss, w0.shape, "w0", "batch, n, L")
    B, n, L = w0.shape
    options = flow_options(exponents(q, B, dev), rtol)   # q checked before the method and reduction look at it
    # a balanced pair keeps |u|^q - |v|^q = 0 to ~100 rtol, so it arrives at 0 together to within
    # (100 rtol)^(1/q) <= sqrt(100 rtol) of the factors' scale
    saddle_tol = (100 * rtol) ** 0.5
    scale = w0.abs().reshape(B, -1).amax(1).clamp_min(1e-300)
    undecayed = decay is None and schedule is None and isinstance(nu, (int, float)) and nu == 0
    if _use_sign_flow(options["q"], loss, undecayed, extras, kw):
        kw.pop("method", None)
        if "max_steps" in kw:
            kw["max_events"] = kw.pop("max_steps")
        return simulate_sign_flow(w0, loss, t_end, device=dev, rtol=rtol, atol=atol, **kw)
    params = {"w_scale": scale, **kw.pop("params", {})}
    if _use_reduction(kw.pop("reduce", None), w0, q, loss, undecayed, extras, kw):
        system = BalancedReduction(loss, n, L, **options)
        x0 = w0.prod(-1)
        params["w_sign"] = torch.sign(w0)
        if kw.get("events"):
            kw["events"] = _on_factors(system, kw["events"])
        res = _run(system, x0, q, loss, t_end, device=dev, extras_dim=n, rtol=rtol, atol=atol,
                   params=params, **kw)
        return ReducedResult(res.solution, system, n)
    if undecayed:
        system = DeepDiagonalFlow(loss, n, L, extras, saddle_tol=saddle_tol, **options)
    else:
        validate.choice(decay, ("decoupled", "coupled"), "decay")
        if schedule is not None:
            validate.callables(schedule=schedule)
        nu_t = float64(nu, "nu", dev)
        if nu_t.ndim > 1 or nu_t.ndim == 1 and nu_t.shape[0] != B:
            raise ValueError(f"nu must be a number or have one entry per trajectory ({B}), got {tuple(nu_t.shape)}")
        nu_t = nu_t.expand(B).clone()
        if not bool((torch.isfinite(nu_t) & (nu_t >= 0)).all()):
            raise ValueError("nu must be finite and >= 0 (a number or one entry per trajectory)")
        if decay == "coupled" and schedule is None and not bool(nu_t.any()):
            decay = "decoupled"          # nu = 0: the same flow; its surfaces d_i f = 0 are not degenerate
        system = DecayFlow(loss, n, L, decay, schedule, extras, saddle_tol=saddle_tol, **options)
        params["nu"] = nu_t
    return _run(system, w0.reshape(B, n * L), q, loss, t_end, device=dev, extras_dim=n * L,
                rtol=rtol, atol=atol, params=params, **kw)


SIGN_FLOW_OPTIONS = frozenset({"method", "events", "t_eval", "max_steps", "max_wall", "progress"})


def _use_sign_flow(q, loss, undecayed, extras, kw) -> bool:
    """Whether :func:`simulate_parameter_flow` runs the exact event-to-event sign flow
    (:func:`numerics.sign.simulate_sign_flow`): ``method="sign"`` demands it; by default it is
    used for sign descent (every ``q = 1``, no decay) on a coupled quadratic loss, where the
    Filippov field of DOP853 crawls from one sliding-set change to the next (paper-size
    regression, 8 trajectories: t = 50 in 14 s exact, t = 0.036 in 300 s on DOP853), provided
    the call asks only for what it offers (events, ``t_eval``, ``max_steps`` as its
    ``max_events``, ``max_wall``, ``progress``: no extras, dense output or parameters).
    ``method="dop853"`` keeps the Filippov flow."""
    method = kw.get("method")
    if method not in (None, "sign"):
        return False
    fits = (undecayed and not extras and set(kw) <= SIGN_FLOW_OPTIONS and bool((q == 1).all())
            and getattr(loss, "quadratic", False))
    if method == "sign" and not fits:
        raise ValueError("method='sign' (the exact sign flow) needs q = 1, no decay, a quadratic loss "
                         "(loss.quadratic) and no extras, dense output or params; its options are "
                         f"{sorted(SIGN_FLOW_OPTIONS)}")
    return fits and (method == "sign" or not loss.separable)


def _on_factors(system: BalancedReduction, events):
    """Each event read through the factors ``w = sign(w_0) |x|^(1/L)`` ``(B, nL)`` of the reduced
    state ``x``: the state layout of the parameter flow, which the event functions are written for."""
    return [replace(e, fn=lambda t, y, p, fn=e.fn: fn(t, system.factors(y, p).reshape(y.shape[0], -1), p))
            for e in events]


def _use_reduction(reduce, w0, q, loss, undecayed, extras, kw) -> bool:
    """Whether :func:`simulate_parameter_flow` integrates in mirror coordinates
    (:class:`BalancedReduction`): where it is exact (no decay, every start balanced) and the
    output is the same (no extras, ``t_eval`` or dense output, which see the factors; events
    see the factors reconstructed from ``x`` by :func:`_on_factors`),
    automatically on a coupled loss with every ``q`` in ``(1, 2)`` (``n`` unknowns instead of
    ``nL``; the stepper then follows :func:`default_method`); ``reduce=True`` demands it,
    ``reduce=False`` refuses it."""
    if reduce is False:
        return False
    exact = undecayed and bool(balanced_start(w0).all())
    plain = not extras and kw.get("t_eval") is None and not kw.get("dense")
    if reduce is True:
        if not (exact and plain):
            raise ValueError("reduce=True needs a balanced start (|w_ik| equal over k), no decay, and no "
                             "extras, t_eval or dense output")
        return True
    qt = torch.as_tensor(q, dtype=torch.float64)
    return exact and plain and not loss.separable and bool(((qt > 1) & (qt < 2)).all())


@dataclass
class ReducedResult(FlowResult):
    """A deep diagonal batch simulated in mirror coordinates: ``state`` is ``x``; ``w`` the
    factors ``sign(w_ik(0)) |x_i|^(1/L)``. Event functions saw the factors; the states of the
    event log are ``x``."""

    @property
    def w(self):
        return self.system.factors(self.state, self.solution.params)


def simulate_scalar_flow(w0, q, loss: Loss, g, dg, t_end, *, device="cpu", extras=(), rtol=1e-10,
                         atol=1e-12, **kw) -> FlowResult:
    """Simulate the steepest flow ``dw_i/dt = -phi_q(d_i f(x) g'(w_i))`` of a scalar model
    ``x_i = g(w_i)`` (MIR-5) from ``w0`` of shape ``(B, n)``.

    ``g``, ``dg``: torch functions ``w -> g(w)``, ``w -> g'(w)`` (elementwise, shape of ``w``);
    ``extras``: a list of quadratures ``f(x, grad, p) -> (B, k)`` integrated with the state
    (``result.extras``); ``q``, ``t_end``, ``rtol``, ``atol`` and the remaining keywords as in
    :func:`simulate_parameter_flow`. ``result.x`` is ``g(w)``, ``result.w`` is ``w``. Example::

        import torch
        from numerics import simulate_scalar_flow
        from numerics.losses import SeparableQuadratic

        w0 = torch.full((2, 1), 0.3, dtype=torch.float64)
        res = simulate_scalar_flow(w0, 1.5, SeparableQuadratic(1.0), torch.sinh, torch.cosh, 1.0)
        print(res.x[0, 0].item())     # x = sinh(w) after t = 1, on its way to y = 1

    Your own ``g`` as text: ``theory.model("w**3 + w").compile()`` gives its ``g`` and ``dg``
    kernels (``verify.mir.simulate_model`` runs the whole path)."""
    dev = resolve_device(device)
    w0 = _states(w0, "w0", loss, dev)
    validate.callables(g=g, dg=dg)
    system = ScalarFlow(loss, w0.shape[1], g, dg, extras, **flow_options(exponents(q, w0.shape[0], dev), rtol))
    return _run(system, w0, q, loss, t_end, device=dev, extras_dim=w0.shape[1], rtol=rtol, atol=atol, **kw)


def simulate_mirror_flow(x0, q, loss: Loss, hess, t_end, *, device="cpu", extras=(), rtol=1e-10,
                         atol=1e-12, **kw) -> FlowResult:
    """Simulate ``dx/dt = -phi_q(grad f)/R''(x)`` from ``x0`` of shape ``(B, n)``.

    ``hess(x, p)`` returns ``R''(x)`` (shape of ``x``; ``p`` the per-trajectory parameters,
    ``p["q"]`` among them). A generated kernel takes its parameters as further arguments: bind
    them with :func:`numerics.bind`, e.g. ``bind(K.mir1_hess, L=3)`` (``q`` comes from ``p``) or
    ``bind(theory.model("w**3 + w").compile()["hess"])``. ``extras``: a list of quadratures
    ``f(x, grad, p) -> (B, k)`` integrated with the state (``result.extras``); the remaining
    keywords as in :func:`simulate_parameter_flow`."""
    dev = resolve_device(device)
    x0 = _states(x0, "x0", loss, dev)
    validate.callables(hess=hess)
    system = MirrorFlow(loss, x0.shape[1], hess, extras, **flow_options(exponents(q, x0.shape[0], dev), rtol))
    return _run(system, x0, q, loss, t_end, device=dev, extras_dim=x0.shape[1], rtol=rtol, atol=atol, **kw)


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
    decay included) of the ``2n`` branch outputs under ``f(A - B)``. Events and extras
    (``f(x, grad, p) -> (B, k)``) see the ``2n`` branch outputs as ``x``."""
    u0 = float64(u0, "u0")
    v0 = float64(v0, "v0")
    if u0.ndim != 3 or u0.shape != v0.shape:
        raise ValueError(f"u0 and v0 must have the same shape (batch, n, L), got {tuple(u0.shape)} "
                         f"and {tuple(v0.shape)}")
    check_loss(loss)
    check_dimension(loss, u0.shape, "u0", "batch, n, L")
    res = simulate_parameter_flow(torch.cat([u0, v0], 1), q, BranchLoss(loss, u0.shape[1]), t_end, **kw)
    return TwoBranchResult(res.solution, res.system, res.state_dim)
