"""Exact sign flow (``q = 1``, no decay) of one trajectory on a coupled quadratic loss with
balanced factors: closed-form motion between events, incremental linear algebra at events.

The loss has gradient ``g = H x - c`` (``H`` constant). The factors of coordinate ``i`` are
*balanced*, ``|w_ik| = a_i`` for every ``k``; the flow keeps them so, since
``d|w_ik|/dt = -u_i sign(x_i)`` for every ``k`` (BAL at ``q = 1``). Hence
``x_i = sigma_i a_i^L``, ``S_i = sum_k |prod_{j != k} w_ij| = L a_i^(L-1)`` and
``dx_i/dt = -u_i S_i``. Coordinates are moving (``u_i = ±1``, the side of ``d_i f``), sliding
(``d_i f = 0``, Filippov multiplier ``|mu_i| <= 1`` shared by the factors, Utkin's equivalent
control) or frozen (the saddle ``w_i = 0`` at ``L >= 2``, or at rest). Between events, in
``tau = t - t0``:

* moving: ``a_i(tau) = a_i - u_i sigma_i tau``, ``x_i = sigma_i a_i(tau)^L`` (degree ``L``);
* sliding: ``d_S f = 0`` gives ``H_SS x_S(tau) = c_S - H_SN x_N(tau)``, a polynomial of degree
  ``L``, and the closed form ``mu_i = -x_i' / (L |x_i|^((L-1)/L))`` (``|w_ik| = |x_i|^(1/L)``).

Events (earliest of):

* moving ``i``: ``u_i d_i f(x(tau))`` goes from ``> 0`` to ``<= 0`` (degree ``L``);
* sliding ``i``: ``|mu_i|`` reaches 1, i.e. for odd ``L`` ``L^L x^(L-1) ± x'^L`` reaches 0
  (``mu = ±1``), for even ``L`` ``L^L sigma x^(L-1) - x'^L`` does (degree ``L (L-1)``);
* moving ``i``: ``a_i`` reaches 0 (``L >= 2``: the saddle, frozen; ``L = 1``: ``x_i`` changes sign);
* ``t_end``; user events are located by the caller on :meth:`CoupledSignPath.path`.

Roots (:func:`numerics.polynomials.earliest_downcrossing`): a lower bound on each polynomial's
first root screens them; companion-matrix eigenvalues only for those whose bound comes before
the best event so far, the earliest bisected on its polynomial to adjacent floats. At an event the active-set rule of
:mod:`numerics.filippov` is applied (joining surfaces slide unless their multiplier leaves
``(-1, 1)``, the largest ``|mu|`` leaving first to the side ``sign(mu)``; a surface on its zero
that the field pulls back joins) on :class:`numerics.cholesky.IncrementalCholesky` of ``H_SS``
(one insertion or removal per change, no refactorization). Coordinates whose gradients agree
up to sign (``d_j f = ±d_i f``: the two branches of :class:`numerics.flows.BranchLoss`) share
one surface: :func:`surface_classes` groups them, the factorization is over classes, and the
sliding members of a class move by equal shares ``s_j dx_j/dt`` of the class's motion (the
minimum-norm multipliers of :func:`numerics.filippov.equivalent_control` for equal-scale
columns); a held member (``|mu|`` reached 1) is re-admitted at the next event where its
share fits. A trajectory whose non-frozen
``|d_i f|`` are all within the stationarity band is at rest (all surfaces active, minimum-norm
multipliers 0) and is frozen there. Only a sliding set whose ``H_SS`` is singular away from
rest has no closed form here: :attr:`CoupledSignPath.singular` is set and the caller continues
that trajectory on the Filippov ODE (:class:`numerics.decay.DecayFlow`).

Work per event: ``O(n^2 L)`` for the gradient polynomials, ``O(|S|^2 L)`` for the sliding
solve and the factor update, eigenvalues for a few polynomials of degree ``<= L (L-1)``.

What is exact beyond balance: a lambda-balanced start, ``|w_ik| = a_i + lambda_ik`` (conserved
offsets), has ``x_i = sigma_i prod_k (a_i + lambda_ik)`` and ``mu_i = -x_i' / S_i(a_i)`` with
``a_i`` a root of a degree-``L`` polynomial in ``x_i(t)``: no closed form in ``t``, and
``|mu_i| = 1`` is no polynomial event. Such starts run on the Filippov ODE
(:mod:`numerics.sign` decides per call with :func:`balanced`).
"""

from __future__ import annotations

import math

import numpy as np

from .cholesky import IncrementalCholesky
from .polynomials import earliest_downcrossing, horner, polyder, polypow

MOVING, SLIDING, FROZEN = 0, 1, 2
RATE_TOL = 1e-12       # relative rounding of a surface's rate (sum of |H_ij xdot_j|)
NONE, END, FACTOR, SURFACE, EXIT = -1, 0, 1, 2, 3          # kinds of event (NONE: a plain stop)


def balanced(w, rtol: float = 1e-13) -> bool:
    """Whether every coordinate's factors of ``w`` ``(n, L)`` share one magnitude (to ``rtol``)."""
    a = np.abs(w)
    return bool((a.max(1) - a.min(1) <= rtol * max(float(a.max()), 1e-300)).all())


def _binomial_power(a, d, L):
    """Coefficients of ``(a + d tau)^L`` ``(n, L+1)`` for vectors ``a``, ``d``."""
    m = np.arange(L + 1)
    binom = np.array([math.comb(L, k) for k in m], dtype=float)
    return binom * a[:, None] ** (L - m) * d[:, None] ** m


def surface_classes(H, c, rtol: float = 1e-14):
    """Coordinates that share one switching surface: ``d_j f = s_j d_i f`` identically (rows of
    ``H`` and entries of ``c`` equal up to the sign ``s_j = ±1``), as the two branches of
    :class:`numerics.flows.BranchLoss`. Returns ``(cls, s, rep)``: the class of each coordinate,
    its sign relative to the class representative, and the representatives."""
    m = len(c)
    tol = rtol * max(float(np.abs(H).max()), float(np.abs(c).max()), 1e-300)
    h = H @ np.random.default_rng(0).standard_normal(m)                  # a fingerprint of each row
    cls, s, rep = np.full(m, -1), np.ones(m), []
    for j in range(m):
        if cls[j] >= 0:
            continue
        cls[j] = len(rep)
        rep.append(j)
        for sign in (1.0, -1.0):
            close = (np.abs(h - sign * h[j]) <= 4 * tol * m) & (np.abs(c - sign * c[j]) <= tol)
            cand = np.flatnonzero((cls < 0) & close)
            for k in cand:
                if np.abs(H[k] - sign * H[j]).max() <= tol:
                    cls[k], s[k] = cls[j], sign
    return cls, s, np.array(rep)


class CoupledSignPath:
    """One trajectory of the exact coupled sign flow (see the module)."""

    def __init__(self, H, c, w0, t_end: float, band: float):
        self.n, self.L = w0.shape
        self.cls, self.s, self.rep = surface_classes(H, c)
        self.K = len(self.rep)
        self.trivial = self.K == self.n and bool((self.s == 1).all())
        self.Hc, self.cc = H[np.ix_(self.rep, self.rep)], c[self.rep]
        self.t, self.t_end, self.band = 0.0, float(t_end), band
        self.sgn = np.where(w0 != 0, np.sign(w0), 1.0)          # factor signs
        self.a = np.abs(w0).max(1)
        self.sig = self.sgn.prod(1)
        self.mode = np.full(self.n, MOVING)
        if self.L >= 2:
            self.mode[self.a == 0] = FROZEN
        self.x = self.sig * self.a ** self.L
        self.u = np.zeros(self.n)
        self.t_slide = np.full(self.n, math.nan)
        self.rested = np.zeros(self.n, dtype=bool)              # live when the trajectory came to rest
        self.zero_order = np.zeros(self.K, dtype=int)            # known zeros of a surface at t
        self.chol = IncrementalCholesky(self.Hc)                 # over the sliding classes
        self.sliding = np.zeros(self.K, dtype=bool)
        self.singular = False
        self.events = 0
        g = self.grad()
        self.u = np.sign(g) * (self.mode == MOVING)
        if self.L == 1:                                          # a factor at 0 heads where it moves
            at0 = (self.a == 0) & (self.u != 0)
            self.sgn[at0, 0] = -self.u[at0]
            self.sig = self.sgn.prod(1)
        self.settle(np.flatnonzero((self.mode == MOVING) & (np.abs(g) <= band)))
        self._plan = None

    # -- state -----------------------------------------------------------------------------------
    def to_classes(self, v):
        """``z_c = sum_{j in c} s_j v_j`` for ``v`` ``(n,)`` or ``(n, k)``."""
        if self.trivial:
            return v.copy()
        out = np.zeros((self.K,) + v.shape[1:])
        np.add.at(out, self.cls, (self.s * v.T).T)
        return out

    def gamma(self):
        """``d f`` per class (of its representative)."""
        return self.Hc @ self.to_classes(self.x) - self.cc

    def grad(self):
        return self.s * self.gamma()[self.cls]

    def speed(self):
        """``S_i = L a_i^(L-1)`` (``dx_i/dt = -u_i S_i``), with ``a_i = |x_i|^(1/L)`` when sliding."""
        a = np.where(self.mode == SLIDING, np.abs(self.x) ** (1 / self.L), self.a)
        return self.L * a ** (self.L - 1) * (self.mode != FROZEN)

    def factors(self):
        """``w`` ``(n, L)`` at the current time."""
        a = np.where(self.mode == SLIDING, np.abs(self.x) ** (1 / self.L), self.a)
        return self.sgn * a[:, None]

    def _free_share(self, zS, fixed):
        """The sliding coordinates' share of the sliding classes' ``zS`` (values or polynomials
        ``(|S|, k)``) beyond the ``fixed`` members' part (``(n, k)``, 0 on sliding rows): equal
        ``s_j x_j`` per sliding member (the minimum-norm multipliers of equal-scale columns)."""
        idx = np.array(self.chol.index, dtype=int)
        rem = np.zeros((self.K,) + zS.shape[1:])
        rem[idx] = zS - self.to_classes(fixed)[idx]
        free = self.mode == SLIDING
        count = np.bincount(self.cls[free], minlength=self.K)
        share = (self.s * (rem[self.cls].T / np.maximum(count[self.cls], 1))).T
        return share * free.reshape((-1,) + (1,) * (zS.ndim - 1))

    def rates(self):
        """``dx/dt`` ``(n,)`` and the multipliers ``mu`` ``(n,)`` (0 off the sliding set)."""
        S = self.speed()
        idx = np.array(self.chol.index, dtype=int)
        xdot = -self.u * S * (self.mode == MOVING)
        mu = np.zeros(self.n)
        if len(idx):
            zdot = self.to_classes(xdot) * ~self.sliding
            xdot = xdot + self._free_share(-self.chol.solve(self.Hc[idx] @ zdot), xdot)
            free = self.mode == SLIDING
            with np.errstate(divide="ignore", invalid="ignore"):
                mu[free] = np.where(S[free] > 0, -xdot[free] / S[free], np.inf)
        return xdot, mu

    # -- the active-set rule ------------------------------------------------------------------------
    def _join(self, j):
        c = self.cls[j]
        if not self.sliding[c]:
            if not self.chol.insert(c):
                return False
            self.sliding[c] = True
        self.mode[j] = SLIDING
        if math.isnan(self.t_slide[j]):
            self.t_slide[j] = self.t
        return True

    def _leave(self, j, side, order):
        """Member ``j`` leaves to ``side``; its class leaves with its last member (a zero of order
        ``order`` of its surface at this time)."""
        self.mode[j] = MOVING
        self.a[j] = abs(self.x[j]) ** (1 / self.L)
        self.u[j] = side
        c = self.cls[j]
        if not ((self.cls == c) & (self.mode == SLIDING)).any():
            self.chol.remove(c)
            self.sliding[c] = False
            self.zero_order[c] = order

    def settle(self, candidates, exclude=()):
        """The active-set rule at the current time with the surfaces of ``candidates`` reached
        (and the held members of sliding classes, re-admitted while their share of the class's
        motion needs ``|mu| < 1``; not ``exclude``, whose exit just fired). A surface counts as
        pulled back only beyond the rounding of its rate (``RATE_TOL`` of the rate's terms):
        where an exit fired (``|mu| = 1``) that rate is 0 to rounding."""
        g = self.grad()
        live = self.mode != FROZEN
        if live.any() and np.abs(g[live]).max() <= self.band:
            self.rest()
            return
        held = (self.mode == MOVING) & self.sliding[self.cls]
        held[list(exclude)] = False
        pending = list(candidates) + [int(j) for j in np.flatnonzero(held)]
        absH = None
        gam = self.gamma()
        for _ in range(2 * self.n + 2):
            for j in pending:
                if not self._join(j):
                    self.singular = True
                    return
            xdot, mu = self.rates()
            over = (self.mode == SLIDING) & (np.abs(mu) >= 1)
            if over.any():
                j = int(np.argmax(np.where(over, np.abs(mu), 0)))
                self._leave(j, np.sign(mu[j]), 1)
                pending = []
                continue
            near = ~self.sliding & (np.abs(gam) <= self.band)
            if not near.any():
                return
            absH = np.abs(self.Hc) if absH is None else absH
            zdot = self.to_classes(xdot)
            rate = self.Hc[near] @ zdot
            tol = RATE_TOL * (absH[near] @ np.abs(zdot))
            members = (self.mode == MOVING) & near[self.cls]
            pos = np.cumsum(near) - 1
            side_rate = np.where(members, self.u * self.s * rate[pos[self.cls]], np.inf)
            back = members & (side_rate < -tol[pos[self.cls]])
            if not back.any():
                return
            worst = self.cls[int(np.argmin(np.where(back, side_rate, np.inf)))]
            pending = [int(j) for j in np.flatnonzero((self.cls == worst) & (self.mode == MOVING))]
        self.singular = True                     # the rule did not settle: leave it to the ODE

    def rest(self):
        """Every non-frozen ``|d_i f|`` within the band: the trajectory stays here."""
        live = self.mode != FROZEN
        self.t_slide[live & np.isnan(self.t_slide)] = self.t
        self.chol = IncrementalCholesky(self.Hc)
        self.sliding[:] = False
        self.a = np.where(live, np.abs(self.x) ** (1 / self.L), self.a)
        self.rested = live
        self.mode[:] = FROZEN

    # -- between events ------------------------------------------------------------------------------
    def polynomials(self):
        """``x(tau)`` ``(n, L+1)`` and ``d f(x(tau))`` per class ``(K, L+1)`` until the next event."""
        L = self.L
        X = np.zeros((self.n, L + 1))
        mov = self.mode == MOVING
        X[mov] = self.sig[mov, None] * _binomial_power(self.a[mov], -self.u[mov] * self.sig[mov], L)
        X[self.mode == FROZEN, 0] = self.x[self.mode == FROZEN]
        Z = self.to_classes(X)
        idx = np.array(self.chol.index, dtype=int)
        if len(idx):                              # (re-projects x_S onto d_S f = 0 at every event)
            rhs = -(self.Hc[idx] @ (Z * ~self.sliding[:, None]))
            rhs[:, 0] += self.cc[idx]
            ZS = self.chol.solve(rhs)
            free = self.mode == SLIDING
            count = np.bincount(self.cls[free], minlength=self.K)
            now = self.to_classes(np.where(free, self.x, 0.0))[self.cls] / np.maximum(count[self.cls], 1)
            X[free] = self._free_share(ZS, X)[free]        # s_j x_j moves by an equal share of the class's
            X[free, 0] += self.x[free] - self.s[free] * now[free]          # remainder; each keeps its start
            self.x[free] = X[free, 0]
            Z[idx] = ZS
        G = self.Hc @ Z
        G[:, 0] -= self.cc
        return X, G

    def plan(self):
        """The next event of this trajectory: ``(dt, kind, index, side)``."""
        if self._plan is not None:
            return self._plan
        L, T = self.L, self.t_end - self.t
        X, G = self.polynomials()
        self._X = X
        best = (T, END, -1, 0.0)
        if T <= 0 or (self.mode == FROZEN).all():
            self._plan = best
            return best
        mov = np.flatnonzero(self.mode == MOVING)
        polys, kinds, index, sides = [], [], [], []
        watch = mov[~self.sliding[self.cls[mov]]]           # moving members of classes not sliding
        if len(watch):
            reps = watch[np.unique(self.cls[watch], return_index=True)[1]] if not self.trivial else watch
            P = (self.u[reps] * self.s[reps])[:, None] * G[self.cls[reps]]
            k = self.zero_order[self.cls[reps]]
            for z in (1, 2):                     # divide known zeros at tau = 0 out
                sh = k >= z
                P[sh] = np.concatenate([P[sh, 1:], np.zeros((int(sh.sum()), 1))], 1)
            polys.append(P)
            kinds.append(np.full(len(reps), SURFACE))
            index.append(reps)
            sides.append(np.zeros(len(reps)))
        if len(mov):
            closing = mov[self.u[mov] * self.sig[mov] > 0]
            if len(closing):
                tz = self.a[closing].min()
                if tz < best[0]:                 # balanced starts reach 0 together: one event
                    best = (float(tz), FACTOR, closing[self.a[closing] <= tz * (1 + 4e-16)], 0.0)
        sl = np.flatnonzero(self.mode == SLIDING)
        if len(sl) and L >= 2:
            xs, xd = X[sl], polyder(X[sl])
            lead, xdL = L ** L * polypow(xs, L - 1), polypow(xd, L)
            if L % 2:
                exits = [(lead + xdL, 1.0), (lead - xdL, -1.0)]
            else:
                exits = [(self.sig[sl, None] * lead - xdL, 0.0)]
            for Q, side in exits:
                polys.append(Q)
                kinds.append(np.full(len(sl), EXIT))
                index.append(sl)
                sides.append(np.full(len(sl), side))
        if polys:
            allp = np.zeros((sum(len(p) for p in polys), max(p.shape[1] for p in polys)))
            row = 0
            for p in polys:
                allp[row:row + len(p), :p.shape[1]] = p
                row += len(p)
            root, j = earliest_downcrossing(allp, min(T, best[0]))
            if root < best[0]:
                best = (root, int(np.concatenate(kinds)[j]), int(np.concatenate(index)[j]),
                        float(np.concatenate(sides)[j]))
        self._plan = best
        return best

    def path(self, tau):
        """Factors ``(k, n, L)`` at the times ``t + tau`` (``tau`` ``(k,)`` inside the current phase)."""
        if self._plan is None:
            self.plan()
        tau = np.asarray(tau, dtype=float)
        x = horner(self._X[None], tau[:, None])                       # (k, n)
        mov = self.mode == MOVING
        a = np.where(mov, self.a - self.u * self.sig * tau[:, None], np.abs(x) ** (1 / self.L))
        a = np.where(self.mode == FROZEN, self.a, a)
        return self.sgn[None] * np.maximum(a, 0)[..., None]

    # -- the event -----------------------------------------------------------------------------------
    def advance(self, dt: float, kind: int, i: int = -1, side: float = 0.0):
        """Move to ``t + dt`` and apply the event ``kind`` of coordinate ``i`` there."""
        if self._plan is None:
            self.plan()
        X = self._X
        mov = self.mode == MOVING
        self.a = np.where(mov, self.a - self.u * self.sig * dt, self.a)
        x = horner(X, dt)
        self.x = np.where(mov, self.sig * self.a ** self.L, x)
        self.t = self.t_end if kind == END else self.t + dt
        self.zero_order[:] = 0
        self._plan = None
        self.events += 1
        if kind == FACTOR:                       # i: the coordinates whose factors reach 0
            self.a[i], self.x[i] = 0.0, 0.0
            if self.L >= 2:
                self.mode[i] = FROZEN
                self.t_slide[i] = np.where(np.isnan(self.t_slide[i]), self.t, self.t_slide[i])
            else:
                self.sgn[i] *= -1
                self.sig[i] *= -1
            return
        if kind == EXIT:
            _, mu = self.rates()
            self._leave(i, side if side != 0 else float(np.sign(mu[i])), 2)
            self.settle([], exclude=[i])
            return
        if kind == SURFACE:
            # the class of i, with the surfaces within the band that the field carries towards
            xdot, _ = self.rates()
            rate = (self.Hc @ self.to_classes(xdot))[self.cls]
            near = (self.mode == MOVING) & ~self.sliding[self.cls] & (np.abs(self.grad()) <= self.band) & \
                (self.u * self.s * rate <= 0)
            near |= (self.mode == MOVING) & (self.cls == self.cls[i])
            self.settle([int(j) for j in np.flatnonzero(near)])
            if not self.sliding[self.cls[i]]:
                self.zero_order[self.cls[i]] = 1


__all__ = ["CoupledSignPath", "balanced", "surface_classes", "MOVING", "SLIDING", "FROZEN", "NONE", "END", "FACTOR",
           "SURFACE", "EXIT"]
