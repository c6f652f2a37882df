"""Mode freezing and switching for discontinuous and non-Lipschitz fields.

Discontinuous fields (``sign``, ``|z|^(q-1)``) are integrated by *mode freezing*: at the start
of each step the system reports its switching functions (``ODESystem.switches``); during the
step the field is evaluated with their signs held fixed, which makes it smooth inside the
step. After the step, a switching function that changed sign is located on the dense output
(to adjacent floats), the step is cut there and redone as a fresh step of the cut length, and
``ODESystem.on_switch`` decides what happens on the surface (cross it, or slide on it:
Filippov). Nothing is stepped over, nothing chatters.
"""

from __future__ import annotations

import torch

from .events import locate
from .rows import put_rows, take


def mode_of(system, t, y, p):
    """The frozen mode: signs of the switching functions, or ``None`` for a smooth system."""
    sw = system.switches(t, y, p)
    return None if sw is None else torch.sign(sw)


def crossed_switches(system, t1, y1, p, mode):
    """``(crossed, s1)``: the switching functions in use whose sign left the frozen ``mode`` by
    ``t1`` ``(R, k)``, and their values ``s1`` there (whose signs are the next step's mode where
    the step is kept whole)."""
    s1 = system.switches(t1, y1, p)
    return (mode != 0) & (s1 * mode <= 0), s1


def locate_switch(system, at_points, t0, t1, crossed, mode, points):
    """Earliest time in ``(t0, t1]`` where a ``crossed`` switching function (evaluated on the
    dense output by ``at_points(fn, tt)``) leaves ``mode``, and which ones do there."""
    return locate(lambda tt: (at_points(system.switches, tt) * mode[:, None] <= 0) & crossed[:, None],
                  t0.clone(), t1, crossed, points=points)


def redo_cut(stepper, cut, tc, t0, y0, f0, p, mode):
    """The state at a cut: a fresh step of length ``tc - t0`` (full order, not the interpolant).

    Returns ``(tc, states at tc, failed)``. Where that step's own error test fails (the field is
    non-smooth at the surface), ``tc`` falls back to ``t0`` and ``failed = (rows, h, err, finite)``
    names those rows (indices into ``cut``) for the controller to reject; else ``failed`` is None."""
    redo = torch.zeros_like(y0)
    ci = cut.nonzero(as_tuple=True)[0]
    st = stepper.step(t0[ci], y0[ci], f0[ci], tc[ci] - t0[ci], take(p, ci), None if mode is None else mode[ci])
    ok = st.finite & (st.err <= 1)
    redo[ci] = torch.where(ok[:, None], st.y_new, y0[ci])
    if bool(ok.all()):
        return tc, redo, None
    bad = ci[~ok]
    failed = (bad, tc[bad] - t0[bad], st.err[~ok], st.finite[~ok])
    tc = tc.clone()
    tc[bad] = t0[bad]
    return tc, redo, failed


def apply_switch(system, t, y, p, hit):
    """``ODESystem.on_switch`` for the rows with a surface ``hit``; returns ``(p, y, rows)`` with
    the rows' switching state and states updated in place of copies."""
    rh = hit.any(1)
    new, y_sw = system.on_switch(t[rh], y[rh], take(p, rh), hit[rh])
    y = y.clone()
    y[rh] = y_sw
    return p.with_switching(put_rows(p.switching, rh, new)), y, rh
