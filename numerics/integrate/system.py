"""What the integrator needs from a vector field."""

from __future__ import annotations


class ODESystem:
    """A batched vector field, possibly discontinuous across switching surfaces.

    ``rhs(t, y, p, mode)`` returns ``dy/dt`` (shape ``(B, n)``) for a batch; ``mode`` is ``None``
    or the frozen signs of the switching functions. ``p`` is a
    :class:`~numerics.integrate.rows.Params` of per-trajectory tensors (leading dim ``B``) that
    the integrator compacts and reorders together with the state: the problem's parameters,
    read as ``p["name"]`` and never changed during a run, and the switching state
    ``p.switching["name"]`` (which coordinates are frozen, sliding, on which side), which only
    :meth:`on_switch` replaces. Smooth systems only implement ``rhs``.

    Why one argument with two parts rather than a further argument ``rhs(t, y, p, s, mode)``:
    steppers, event functions, losses and user kernels pass ``p`` through or read parameters
    only, and keep their signatures; a field reads its switching state under its own name
    (``p.switching``), so a reader sees at once which data a switch may change; and the row
    machinery selects, repeats and writes back one object. The system object itself holds
    nothing that changes during a run: whatever depends on the run (exponent, layout of the
    switches) is fixed when it is built, and per-trajectory data lives in ``p``.
    """

    autonomous = False   # True: rhs ignores t (the integrator then skips the stage times)

    def rhs(self, t, y, p, mode):  # pragma: no cover - interface
        raise NotImplementedError

    def jacobian(self, t, y, p, mode):
        """``d rhs / d y`` as ``(B, n, n)`` with the mode frozen, or ``None``: not available
        (implicit and Rosenbrock steppers need it; explicit ones never call it)."""
        return None

    def switches(self, t, y, p):
        """Switching functions ``(B, k)`` whose signs define the mode, or ``None``.
        Components no longer in use (a coordinate sliding) must be returned as 0."""
        return None

    def on_switch(self, t, y, p, hit):
        """Called with the boolean ``(B, k)`` of switching functions that reached 0 at ``t``;
        returns ``(switching, state)``: the new switching state (a dict of the keys of
        ``p.switching``, e.g. a coordinate put in sliding) and the state, possibly projected
        onto the surface it slides on. The problem's parameters are never changed."""
        return p.switching, y

    def max_step(self, t, y, p, mode):
        """An upper bound ``(B,)`` on the next step, or ``None``. Mode freezing only sees the
        switching functions at the ends of a step; a field whose frozen continuation is exact
        for any step (piecewise polynomial, e.g. sign descent) bounds its steps by the time to
        the nearest approaching surface so that none is crossed and recrossed unseen."""
        return None


class TimeReversed(ODESystem):
    """``system`` in the time ``s = -t``: ``dy/ds = -rhs(-s, y)``; switching functions, surface
    rules and step caps see the original time. Integrating it forward is integrating
    ``system`` backward."""

    def __init__(self, system: ODESystem):
        self.system, self.autonomous = system, system.autonomous

    def rhs(self, t, y, p, mode):
        return -self.system.rhs(-t, y, p, mode)

    def jacobian(self, t, y, p, mode):
        J = self.system.jacobian(-t, y, p, mode)
        return None if J is None else -J

    def switches(self, t, y, p):
        return self.system.switches(-t, y, p)

    def on_switch(self, t, y, p, hit):
        return self.system.on_switch(-t, y, p, hit)

    def max_step(self, t, y, p, mode):
        return self.system.max_step(-t, y, p, mode)
