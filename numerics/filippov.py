"""Filippov sliding of sign fields (``q = 1``): equivalent control and the active-set rule.

Where the switching functions ``sigma_j`` (``j = 1..K``) have signs ``u_j``, a sign field is
affine in ``u``, and so is the rate of the switching functions along it:

    d sigma / dt = c0 - M u.

**Sliding convention.** On the surfaces ``{sigma_j = 0, j in A}`` Filippov's convex
combination is taken across each surface separately: ``u_A`` is replaced by multipliers
``mu_A in [-1, 1]``, one per surface (Utkin's equivalent control), fixed by
``d sigma_A / dt = 0``:

    M_AA mu_A = c0_A - M_AI u_I.

For the deep diagonal model the surface of ``d_i f = 0`` carries one multiplier shared by the
``L`` factors of coordinate ``i`` (the sign of ``d_i f`` is what switches), which keeps the
balance laws BAL-1/BAL-2 exact while sliding. A singular ``M_AA`` (more zero surfaces than
independent constraints, e.g. a regression at an interpolating point) takes the minimum-norm
solution (pseudo-inverse of the column-equilibrated system).

**Coinciding surfaces** (:class:`Groups`). Surfaces that are one surface up to sign,
``sigma_k = s_k sigma_l`` on a set the flow keeps (the equal-magnitude factors of one
coordinate under coupled decay), share one multiplier: ``mu_k = s_k nu_l``, ``u_k = s_k u_l``.
With ``P`` the ``K x G`` matrix of the shares (``P_kl = s_k`` for ``k`` in group ``l``), ``nu``
solves the folded system ``P^T M P nu = P^T c``. Why this is Filippov's convex combination:
on the kept set the group's sign field is ``-s_k sign(sigma_l)``, a field with *one*
discontinuity surface, and across one surface the convex combination is unique (the
multiplier that makes ``d sigma_l / dt = 0``, when the folded pivot is nonzero). The unfolded
``M_AA`` is blind to this: where the members' gradients are parallel too (two factors at 0
whose coordinate's gradient sits at ``|d_i f| = nu`` because the other branch slides) it is
singular and every split ``mu_k - mu_l`` solves it; rounding then picks one, the members part
and the field jumps from call to call. Where ``M_AA`` is regular its unique solution is
invariant under the swap of the members (a symmetry of the system on the kept set), so it
already has equal shares: folding changes nothing there.

**Active-set rule.** Surfaces that are reached (or found within tolerance of 0 while the
field carries the state towards them) join ``A``;
``mu_A`` is solved; while some ``|mu_j| > 1`` the surface with the largest ``|mu_j|`` leaves
``A`` to the side ``sign(mu_j)`` (the field on the far side still points across it: a
crossing) and ``mu`` is solved again. A sliding surface leaves when ``|mu_j|`` reaches 1
(the exit function ``1 - |mu_j|``), to the side ``sign(mu_j)``.
"""

from __future__ import annotations

import torch

RCOND = 1e-10        # singular values below RCOND x the largest are treated as 0


def surface_rate(M, c0, u):
    """``d sigma/dt = c0 - M u`` ``(B, K)`` for signs or multipliers ``u`` ``(B, K)``."""
    return c0 - (M @ u[..., None])[..., 0]


class Groups:
    """Surfaces that coincide up to sign, ``sigma_k = share_k sigma_lead(k)`` (see the module):
    ``lead`` ``(B, K)`` the index of each surface's group leader (a leader leads itself),
    ``share`` ``(B, K)`` the signs ``s_k`` (+1 on leaders). Folded quantities are per group,
    ``(B, G)`` with ``G`` the most groups of a row, numbered in the order of their leaders
    (a row with fewer groups pads with empty ones, which never become active)."""

    def __init__(self, lead, share):
        self.lead, self.share = lead, share
        self.is_lead = lead == torch.arange(lead.shape[-1], device=lead.device)
        self.group = (self.is_lead.long().cumsum(1) - 1).gather(1, lead)     # each surface's group
        self.G = int(self.is_lead.sum(1).max())

    def fold(self, M, c0):
        """``(P^T M P, P^T c0)`` with ``P_kg = share_k`` where surface ``k`` is in group ``g``."""
        B, K = self.group.shape
        S = M * self.share[:, :, None] * self.share[:, None, :]
        rows = M.new_zeros(B, self.G, K).scatter_add_(1, self.group[:, :, None].expand(B, K, K), S)
        Mf = M.new_zeros(B, self.G, self.G).scatter_add_(2, self.group[:, None, :].expand(B, self.G, K), rows)
        return Mf, self.leaders(self.share * c0, every=True)

    def leaders(self, v, every: bool = False):
        """Per group: the leader's ``v`` (``every``: the sum over the members)."""
        v = v if every else v * self.is_lead
        return v.new_zeros(v.shape[0], self.G).scatter_add_(1, self.group, v)

    def any(self, mask):
        """Per group: whether some member is in ``mask``."""
        return self.leaders(mask.long(), every=True) > 0

    def unfold(self, v):
        """Per surface from per group: ``share_k v_group(k)`` (booleans: ``v_group(k)``)."""
        v = v.gather(1, self.group)
        return v if v.dtype == torch.bool else self.share * v


def equivalent_control(M, c0, active, side, groups: Groups | None = None):
    """Multipliers ``mu`` ``(B, K)``: ``M_AA mu_A = c0_A - M_AI side_I`` per row, 0 off ``A``
    (folded by ``groups``: one multiplier per group of coinciding surfaces).

    ``M`` is ``(B, K, K)``, ``c0``/``side`` ``(B, K)``, ``active`` a boolean ``(B, K)``;
    ``side`` must be 0 on columns that do not move (frozen)."""
    rows = active.any(1)
    if not bool(rows.any()):
        return torch.zeros_like(c0)
    if groups is not None:
        M, c0 = groups.fold(M, c0)
        active, side = groups.any(active), groups.leaders(side)
    every = bool(rows.all())
    act = active
    if not every:
        M, c0, act, side = M[rows], c0[rows], active[rows], side[rows]
    c = surface_rate(M, c0, torch.where(act, torch.zeros_like(side), side))
    both = act[:, :, None] & act[:, None, :]
    eye = torch.eye(M.shape[-1], dtype=M.dtype, device=M.device)
    Ma = torch.where(both, M, eye)
    scale = Ma.abs().amax(1).clamp_min(1e-300)                       # column equilibration
    Ms, rhs = Ma / scale[:, None, :], torch.where(act, c, 0.0)[..., None]
    lu, piv, info = torch.linalg.lu_factor_ex(Ms)
    sol = torch.linalg.lu_solve(lu, piv, rhs)[..., 0] / scale
    # an LU solve is exact enough unless the system is (numerically) singular; then the
    # minimum-norm solution is taken instead. Singular shows in the pivots, not in the solution:
    # a consistent right-hand side (duplicate surfaces not folded into Groups, e.g. the
    # opposite gradients of the two branches of a coordinate) gives bounded multipliers whose
    # null-space part is rounding noise amplified by 1/pivot.
    pivots = lu.diagonal(dim1=-2, dim2=-1).abs()
    bad = (info != 0) | ~torch.isfinite(sol).all(1) | (pivots.amin(1) <= RCOND * pivots.amax(1))
    if bool(bad.any()):
        sol[bad] = (torch.linalg.pinv(Ms[bad], rtol=RCOND) @ rhs[bad])[..., 0] / scale[bad]
    out = torch.where(act, sol, 0.0)
    if not every:
        out = torch.zeros_like(active, dtype=c0.dtype).index_put_((rows,), out)
    return out if groups is None else groups.unfold(out)


def resolve(M, c0, candidates, side, near=None, groups: Groups | None = None):
    """The active-set rule: ``(active, side, mu)`` from the candidate surfaces.

    Candidates whose multiplier cannot stay inside ``(-1, 1)`` leave one at a time (largest
    ``|mu|`` first) to the side ``sign(mu)``; the others slide with multipliers ``mu``. Then
    every surface in ``near`` (on or next to its surface) outside the active set must move
    into its own side, ``side_j d sigma_j/dt >= 0``; one that is pulled back joins the
    active set and the rule runs again (single-surface logic: it then slides or crosses to
    the other side). At most ``2K`` passes per row. With ``groups`` the rule runs on the
    folded system: a group joins, leaves and slides as one surface."""
    if groups is not None:
        Mf, cf = groups.fold(M, c0)
        near = None if near is None else groups.any(near)
        out = resolve(Mf, cf, groups.any(candidates), groups.leaders(side), near)
        return tuple(groups.unfold(v) for v in out)
    K = M.shape[-1]
    active, side = candidates.clone(), side.clone()
    near = candidates if near is None else near | candidates
    for _ in range(2 * K + 1):
        mu = equivalent_control(M, c0, active, side)
        over = active & (mu.abs() >= 1)
        if bool(over.any()):
            worst = torch.where(over, mu.abs(), torch.zeros_like(mu)).argmax(1)
            drop = torch.nn.functional.one_hot(worst, K).bool() & over.any(1)[:, None]
            side = torch.where(drop, torch.sign(mu), side)
            active &= ~drop
            continue
        rate = surface_rate(M, c0, torch.where(active, mu, side))
        back = near & ~active & (side * rate < 0)
        if not bool(back.any()):
            break
        worst = torch.where(back, -side * rate, torch.zeros_like(rate)).argmax(1)
        active |= torch.nn.functional.one_hot(worst, K).bool() & back.any(1)[:, None]
    return active, side, mu


__all__ = ["Groups", "equivalent_control", "resolve", "surface_rate"]
