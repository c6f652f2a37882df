"""The deep diagonal steepest flow with weight decay (DEC, BAL-2/3), Filippov sliding at q = 1.

    decoupled (AdamW-like):   dw_ik/dt = -phi_q(d_i f r_ik) - nu(t) w_ik
    coupled (L2 in the step): dw_ik/dt = -phi_q(d_i f r_ik + nu(t) w_ik)

with ``r_ik = prod_{j != k} w_ij`` and ``nu(t) = p["nu"] * schedule(t)`` (per trajectory; the
schedule is a torch function of ``t``, differentiable where coupled sliding needs ``nu'``).

Switching functions: decoupled, the gradient components ``d_i f`` and the factors ``w_ik``
(as without decay); coupled, the per-factor arguments ``z_ik = d_i f r_ik + nu w_ik`` and,
for ``1 < q < 2``, the factors: coupled decay pulls a coordinate off the support onto the
saddle ``x_i = 0`` in finite time, where it is frozen (the saddle rule); a Rosenbrock step
does not land on that arrival (``|w| ~ (t* - t)^(2/(2-q))``, then 0) and hovered at the
size of ``atol``, its error estimate capping the steps of the whole trajectory.

* ``q > 1``: the field is continuous; surfaces are crossed (mode freezing, as without decay).
  With decoupled decay the equilibria lie off the surfaces (DEC-2) and are approached
  smoothly; with coupled decay and ``q < 2`` the flow reaches a stationary point of
  ``F + nu |w|^2/2`` in finite time, and a coordinate whose ``z_ik`` all vanish to the
  stationarity tolerance is frozen there (constant ``nu`` only).
* ``q = 1``: sign fields slide on their surfaces. The integrator tracks, per trajectory, the
  side ``u`` of every surface and the active (sliding) set; sliding velocities are the
  equivalent control of :mod:`numerics.filippov` (decoupled: one multiplier per
  coordinate, shared by its factors; coupled: one per factor, except that factors of one
  coordinate with equal ``|w_ik|`` share one: :meth:`DecayFlow.groups`), and the exit functions
  ``1 - |mu|`` are extra switching functions, so entering and leaving are located like
  any other switch. Sides, sliding set and groups are switching state (``p.switching["side"]``,
  ``["slide"]``, coupled also ``["lead"]``, ``["share"]``); whether the exits exist
  (:attr:`DecayFlow.hybrid`) is decided when the flow is built, from the exponents ``q`` it
  is built for.

``nu = 0`` gives the undecayed flow with this full sliding rule (the plain flow of
:class:`numerics.flows.DeepDiagonalFlow` freezes separable coordinates instead, which is the
same thing without decay, and does not slide on coupled losses).
"""

from __future__ import annotations

import torch

from .filippov import Groups, equivalent_control, resolve, surface_rate
from .flows import DeepDiagonalFlow, frozen_slope
from .forward import jvp
from .geometry import exclusive_prod, frozen_phi, pair_products
from .integrate import Params
from .jacobians import decay_jacobian
from .modes import ModeLayout

BALANCE_RTOL = 1e-13       # factors of a coordinate with |w| equal to this share one surface


class DecayFlow(DeepDiagonalFlow):
    """Deep diagonal steepest flow with decoupled or coupled weight decay (see the module)."""

    def __init__(self, loss, n: int, L: int, decay: str, schedule=None, extras=(), saddle_tol: float = 1e-5,
                 q=None, **kw):
        super().__init__(loss, n, L, extras, saddle_tol, q=q, **kw)
        self.decay, self.schedule = decay, schedule
        self.autonomous = schedule is None
        self.K = n if decay == "decoupled" else n * L       # sliding surfaces
        self.surface_block = "gradient" if decay == "decoupled" else "surfaces"
        self.hybrid = q is not None and bool((torch.as_tensor(q) == 1).any())    # some trajectory has q = 1
        self.layout = self.mode_layout()

    @property
    def stiff_capable(self) -> bool:
        """The Jacobian is derived for ``q > 1`` (:meth:`jacobian`); the sign fields of ``q = 1``
        rows (:attr:`hybrid`) slide instead."""
        return not self.hybrid and self.q_uniform != 1.0 and super().stiff_capable

    def mode_layout(self) -> ModeLayout:
        """Switching blocks: the surfaces (``K``), the factors (``n L``) and, when some
        trajectory has ``q = 1`` (:attr:`hybrid`), the exit functions of the sliding ones (``K``)."""
        blocks = {self.surface_block: self.K, "factors": self.n * self.L}
        if self.hybrid:
            blocks["exits"] = self.K
        return ModeLayout(**blocks)

    # -- pieces -------------------------------------------------------------------------
    def nu(self, t, p):
        if self.schedule is None:
            return p["nu"]
        return p["nu"] * self.schedule(t)

    def nu_rate(self, t, p):
        if self.schedule is None:
            return torch.zeros_like(p["nu"])
        return p["nu"] * jvp(self.schedule, (t,), (torch.ones_like(t),))[1]

    def _geometry(self, t, y, p):
        w = self.split(y)
        x = w.prod(-1)
        g = self.loss.grad(x, p)
        return w, x, g, exclusive_prod(w), self.nu(t, p)

    def surfaces(self, w, g, r, nu):
        """The sliding surfaces ``(B, K)``: ``d_i f`` (decoupled) or ``z_ik`` (coupled)."""
        if self.decay == "decoupled":
            return g
        return (g[..., None] * r + nu[:, None, None] * w).reshape(w.shape[0], -1)

    def groups(self, w):
        """Coupled: the factors of a coordinate with equal ``|w_ik|`` (to ``BALANCE_RTOL`` of the
        coordinate's largest) as :class:`numerics.filippov.Groups`, shares
        ``s_k = sign(w_ik w_il)`` (+1 at 0); decoupled: ``None`` (one surface per coordinate).

        With ``|w_ik| = a`` for ``k`` in a group, ``r_ik = x_i w_ik / a^2`` and so
        ``z_ik = w_ik (d_i f x_i / a^2 + nu)``: the members' surfaces coincide up to the
        signs of ``w_ik`` (at ``a = 0`` with ``s = +1``: ``z_ik = 0`` for all of them), and the
        shared multiplier ``mu_k = s_k nu`` moves every ``|w_ik|`` at the same rate, so the
        group persists: a balanced start stays balanced to the last bit."""
        if self.decay == "decoupled":
            return None
        B, n, L = w.shape
        a = w.abs()
        close = (a[..., :, None] - a[..., None, :]).abs() <= BALANCE_RTOL * a.amax(-1)[..., None, None]
        lead = close.long().argmax(-1)                      # the first close factor (k itself at worst)
        for _ in range(L - 1):                              # chains of close factors: one leader
            lead = lead.gather(-1, lead)
        share = torch.where(w * w.gather(-1, lead) < 0, -1.0, 1.0).to(w.dtype)
        offset = L * torch.arange(n, device=w.device)[:, None]
        return Groups((lead + offset).reshape(B, n * L), share.reshape(B, n * L))

    def _live(self, p):
        live = ~p.switching["frozen"]
        return live if self.decay == "decoupled" else live.repeat_interleave(self.L, 1)

    def _w_hessian(self, w, x, g, r, p):
        """Hessian of ``F(w) = f(prod_k w_k)`` in ``w``: ``H_ij r_ik r_jl`` plus, within a
        coordinate, ``d_i f prod_{m not in {k, l}} w_im`` off the diagonal; ``(B, nL, nL)``."""
        B, n, L = w.shape
        H = self.loss.hess(x, p)
        outer = H[:, :, None, :, None] * r[:, :, :, None, None] * r[:, None, None, :, :]
        eye = torch.eye(n, dtype=w.dtype, device=w.device)[None, :, None, :, None]
        within = eye * (g[..., None, None] * pair_products(w))[:, :, :, None, :]
        return (outer + within).reshape(B, n * L, n * L)

    def control(self, t, w, x, g, r, nu, p, sign_r=None):
        """``(M, c0)`` with ``d sigma/dt = c0 - M u`` along the ``q = 1`` field with signs or
        multipliers ``u`` (frozen coordinates do not move); ``sign_r``: the factor signs
        held inside a step (default: the signs of ``r``)."""
        live = self._live(p)
        if self.decay == "decoupled":
            # dx_i/dt = -u_i S_i - L nu x_i with S_i = sum_k |r_ik|, and d sigma/dt = H dx/dt
            H = self.loss.hess(x, p)
            S = (r.abs() if sign_r is None else r * sign_r).sum(-1) * live
            c0 = -(H @ (self.L * nu[:, None] * x * live)[..., None])[..., 0]
            return H * S[:, None, :], c0
        # d z/dt = J dw/dt + nu'(t) w with dw = -u and J the Hessian of F + nu |w|^2 / 2
        J = self._w_hessian(w, x, g, r, p)
        J.diagonal(dim1=-2, dim2=-1).add_(nu[:, None])
        J = J if bool(live.all()) else J * live[:, None, :]
        return J, self.nu_rate(t, p)[:, None] * w.reshape(w.shape[0], -1)

    def held_signs(self, mode):
        """Coupled: the signs of the surfaces ``d_i f r_ik + nu w_ik``; decoupled: those of
        :class:`~numerics.flows.DeepDiagonalFlow` (``sign(d_i f) prod_{j != k} sign(w_ij)``)."""
        if self.decay == "coupled":
            return self.layout.block(mode, "surfaces").reshape(mode.shape[0], self.n, self.L)
        return super().held_signs(mode)

    def _factor_signs(self, r, mode):
        """``sign(r_ik)``, held at the frozen factor signs inside a step (decoupled)."""
        if mode is None:
            return torch.sign(r)
        sw = self.layout.block(mode, "factors").reshape(r.shape)
        held = exclusive_prod(sw)
        return torch.where(held != 0, held, torch.sign(r))

    def _u(self, t, w, x, g, r, nu, p, sign_r=None):
        """Signs of the inactive surfaces and multipliers of the sliding ones, ``(B, K)``."""
        u, slide = p.switching["side"], p.switching["slide"]
        if bool(slide.any()):
            M, c0 = self.control(t, w, x, g, r, nu, p, sign_r)
            u = torch.where(slide, equivalent_control(M, c0, slide, u, self._groups(p)), u)
        return u

    # -- the ODE system -------------------------------------------------------------------
    def rhs(self, t, y, p, mode):
        w, x, g, r, nu = self._geometry(t, y, p)
        B, n, L = w.shape
        q1 = p["q"] == 1
        some_sign = self.q_uniform == 1.0 or (self.q_uniform is None and bool(q1.any()))
        dw = None
        if self.q_uniform != 1.0:
            q = self.q_of(p, 2)
            if self.decay == "decoupled":
                dw = -frozen_phi(g[..., None] * r, q, self.held(mode)) - nu[:, None, None] * w
            else:
                dw = -frozen_phi(g[..., None] * r + nu[:, None, None] * w, q, self.held(mode))
        if some_sign:
            sign_r = self._factor_signs(r, mode) if self.decay == "decoupled" else None
            u = self._u(t, w, x, g, r, nu, p, sign_r)
            if self.decay == "decoupled":
                sign_dw = -u[..., None] * sign_r - nu[:, None, None] * w
            else:
                sign_dw = -u.reshape(B, n, L)
            dw = sign_dw if dw is None else torch.where(q1[:, None, None], sign_dw, dw)
        if not self.smooth:
            dw = dw * (~p.switching["frozen"])[..., None]
        return self._with_extras(dw.reshape(B, -1), x, g, p)

    def jacobian(self, t, y, p, mode):
        """``d(dw/dt)/dw`` ``(B, nL, nL)`` of the ``q > 1`` field with the mode frozen
        (:func:`numerics.jacobians.decay_jacobian`); ``None`` where not :attr:`stiff_capable`."""
        if not self.stiff_capable:
            return None
        w, x, g, r, nu = self._geometry(t, y, p)
        B, n, L = w.shape
        coupled = self.decay == "coupled"
        arg = g[..., None] * r + nu[:, None, None] * w if coupled else g[..., None] * r
        slope = frozen_slope(arg, self.q_of(p, 2), self.held(mode))
        return decay_jacobian(r, pair_products(w), g, self.loss.hess(x, p), slope, ~p.switching["frozen"], nu,
                              coupled)

    def switches(self, t, y, p):
        if self.smooth:
            return None
        w, x, g, r, nu = self._geometry(t, y, p)
        live = self._live(p)
        sig = self.surfaces(w, g, r, nu) * live
        s = p.switching
        if self.hybrid:
            # q = 1: a surface counts from the side the sliding rule put it on (just after a
            # crossing it may still sit a rounding error behind: 0, not a new crossing)
            held = s["side"] * (s["side"] * sig).clamp_min(0)
            sig = torch.where(s["slide"], torch.zeros_like(sig), torch.where((p["q"] == 1)[:, None], held, sig))
        sig = self.away_from_rest(sig, p)
        rough = (p["q"] < 2)[:, None]                          # q = 2 rows are smooth: no switches
        # the factors: decoupled as without decay; coupled for 1 < q < 2 only, where a coordinate
        # decayed onto the saddle x_i = 0 arrives there in finite time (q = 1 rows slide instead)
        factor_rows = rough if self.decay == "decoupled" else ((p["q"] > 1)[:, None] & rough)
        blocks = {self.surface_block: sig * rough,
                  "factors": (w * (~s["frozen"])[..., None]).reshape(w.shape[0], -1) * factor_rows}
        if self.hybrid:
            mu = self._u(t, w, x, g, r, nu, p)
            blocks["exits"] = torch.where(s["slide"], 1 - mu.abs(), torch.zeros_like(mu))
        return self.layout.join(**blocks)

    def away_from_rest(self, sig, p):
        """The surfaces ``sig`` as switching functions: on a coupled loss, rows with ``1 < q < 2`` keep
        them only near rest (every active one within 10x the stationarity tolerance of
        :meth:`_rest`), as :meth:`numerics.flows.Flow.gradient_switches` does without decay. The
        field is continuous across them there (only non-Lipschitz); locating every crossing of a
        surface that hovers near 0 cut the steps (the regression batches of ``verify.experiments``
        at ``q = 1.5``: 1,009 Rodas5 trials to ``t = 8`` with 170 located crossings, 808 without)."""
        if self.loss.separable:
            return sig
        near_rest = sig.abs().amax(1) <= 10 * self.stationary_tol * self._scale(p)
        return sig * (~((p["q"] > 1) & (p["q"] < 2)) | near_rest)[:, None]

    def max_step(self, t, y, p, mode):
        """``q = 1``: twice the time to the nearest approaching surface at its current rate
        ``d sigma/dt = c0 - M u`` (the frozen sign field is integrated exactly by any step)."""
        if not self.hybrid:
            return None
        w, x, g, r, nu = self._geometry(t, y, p)
        sign_r = self._factor_signs(r, mode) if self.decay == "decoupled" else None
        M, c0 = self.control(t, w, x, g, r, nu, p, sign_r)
        u = self._u(t, w, x, g, r, nu, p, sign_r)
        rate = surface_rate(M, c0, u)
        side = p.switching["side"]
        gap = side * self.surfaces(w, g, r, nu)
        closing = -side * rate
        band = self.stationary_tol * self._scale(p)[:, None]        # surfaces within it count as reached
        watch = ~p.switching["slide"] & self._live(p) & (gap > band) & (closing > 0) & (p["q"] == 1)[:, None]
        tau = torch.where(watch, gap / torch.where(watch, closing, torch.ones_like(closing)), torch.inf)
        return 2 * tau.amin(1)

    def on_switch(self, t, y, p, hit):
        """Saddle collapse (:meth:`~numerics.flows.DeepDiagonalFlow.collapse`), rest at a stationary point of
        ``F + nu |w|^2/2`` (coupled, ``1 < q < 2``, constant ``nu``), and at ``q = 1`` the
        active-set rule on the surfaces reached and the sliding ones whose exit fired."""
        surface_hit = self.layout.block(hit, self.surface_block)
        s = p.switching
        if self.decay == "coupled" and self.schedule is None:
            s = self._rest(t, y, p, surface_hit)
        # the factors' saddle rule (decoupled: the surfaces d_i f = 0 are slid on, not frozen)
        s, y = self.collapse(t, y, p.with_switching(s), self.layout.block(hit, "factors"))
        if self.hybrid:
            s = self._slide(t, y, p.with_switching(s), surface_hit, self.layout.block(hit, "exits"))
        return s, y

    def _rest(self, t, y, p, hit):
        """The switching state with the coordinates at rest frozen (see :meth:`on_switch`)."""
        rows = (p["q"] > 1) & (p["q"] < 2) & hit.any(1)
        if not bool(rows.any()):
            return p.switching
        w, x, g, r, nu = self._geometry(t, y, p)
        z = self.surfaces(w, g, r, nu).abs().reshape(w.shape) * (~p.switching["frozen"])[..., None]
        small = z.amax(-1) <= self.stationary_tol * p["z_scale"][:, None]
        if not self.loss.separable:
            small = small.all(1, keepdim=True).expand_as(small)
        return self._freeze(t, p, small & rows[:, None])

    def _slide(self, t, y, p, hit, exit_hit):
        """The switching state after the active-set rule at ``t`` (``q = 1`` rows)."""
        q1 = (p["q"] == 1)[:, None]
        w, x, g, r, nu = self._geometry(t, y, p)
        M, c0 = self.control(t, w, x, g, r, nu, p)
        live = self._live(p)
        s = p.switching
        slide, side = s["slide"], s["side"]
        groups = self.groups(w)           # the flow keeps them: decided at events, like the sliding set
        leaving = slide & exit_hit
        side = torch.where(leaving, torch.sign(equivalent_control(M, c0, slide, side, groups)), side)
        sig = self.surfaces(w, g, r, nu)
        # Surfaces within the band count as reached only while the field carries the state
        # towards them (a surface just left is within the band for a while: admitting it would
        # make the state slide off its surface, at the band's distance); a surface behind its
        # side was crossed unseen. A surface whose exit fired (|mu| reached 1) leaves to the side
        # sign(mu): it is not re-admitted at the same instant on a rounding-level |mu| < 1.
        rate = surface_rate(M, c0, torch.where(slide, equivalent_control(M, c0, slide, side, groups), side))
        band = (sig.abs() <= self.stationary_tol * self._scale(p)[:, None]) & (side * rate <= 0)
        near = (band | (side * sig < 0)) & live & q1 & ~leaving
        cand = ((slide & ~leaving) | hit | near) & live & q1
        side = torch.where(live, side, torch.zeros_like(side))
        active, side, _ = resolve(M, c0, cand, side, near, groups)
        coord = lambda a: a if self.decay == "decoupled" else a.reshape(-1, self.n, self.L).any(-1)  # noqa: E731
        new = coord(active & ~slide) & torch.isnan(s["t_slide"])
        s = dict(s, t_slide=torch.where(new, t[:, None], s["t_slide"]), slide=torch.where(q1, active, slide),
                 side=torch.where(q1, side, s["side"]))
        return s if groups is None else dict(s, lead=groups.lead, share=groups.share)

    def _groups(self, p):
        """The groups of the switching state (coupled), or ``None``."""
        return None if self.decay == "decoupled" else Groups(p.switching["lead"], p.switching["share"])

    def _scale(self, p):
        return p["g_scale"] if self.decay == "decoupled" else p["z_scale"]

    def initialize(self, y0, p) -> Params:
        """Also the sides of the surfaces at the start, ``z_scale`` (coupled, a parameter) and, at
        ``q = 1``, the sliding set of a start on a surface."""
        if bool((p["q"] == 1).any()) and not self.hybrid:
            raise ValueError("some trajectory has q = 1: build the DecayFlow with its exponents q "
                             "(its exit functions are switching functions)")
        B = y0.shape[0]
        t0 = torch.zeros(B, dtype=y0.dtype, device=y0.device)
        start = super().initialize(y0, p)
        w, x, g, r, nu = self._geometry(t0, y0, start)
        sig = self.surfaces(w, g, r, nu)
        if self.decay == "coupled":
            p = dict(p, z_scale=sig.abs().amax(1).clamp_min(1e-300))
        start = Params(p, dict(start.switching, slide=torch.zeros(B, self.K, dtype=torch.bool, device=y0.device),
                               side=torch.sign(sig) * (p["q"] == 1)[:, None]))
        if self.hybrid:
            none = torch.zeros_like(start.switching["slide"])
            start = start.with_switching(self._slide(t0, y0, start, none, none))
        return start


__all__ = ["DecayFlow", "pair_products"]
