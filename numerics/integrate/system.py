"""What the integrator needs from a vector field."""

from __future__ import annotations


class ODESystem:
    """A batched vector field, possibly discontinuous across switching surfaces.

    ``rhs(t, y, p, mode)`` returns ``dy/dt`` (shape ``(B, n)``) for a batch; ``p`` is a dict
    of per-trajectory tensors (leading dim ``B``) that the integrator compacts together
    with the state; ``mode`` is ``None`` or the frozen signs of the switching functions.
    Smooth systems only implement ``rhs``.
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
        returns ``(parameters, state)``, possibly updated: a coordinate put in sliding, a
        state projected onto the surface it slides on."""
        return p, y

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
