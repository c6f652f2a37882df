"""A simulation run's set-up and result, shared by every simulator (:mod:`numerics.simulate`,
:mod:`numerics.sign`): the device, checked starts, exponents and end times, the flow's build
options, the run's :class:`~numerics.integrate.Params`, and :class:`FlowResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import validate
from .arrays import float64
from .flows import Flow, uniform_exponent
from .integrate import Solution


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


@dataclass
class FlowResult:
    """A simulated batch: the integrator's ``Solution`` plus model-level views."""

    solution: Solution
    system: Flow
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


def exponents(q, B: int, device) -> torch.Tensor:
    """The exponents ``q`` (a number or one per trajectory) as a ``(B,)`` tensor in ``[1, 2]``."""
    qt = float64(q, "q", device)
    qt = qt.expand(B).clone() if qt.ndim == 0 else qt
    if qt.shape != (B,):
        raise ValueError(f"q must be a number or have one entry per trajectory ({B}), got {tuple(qt.shape)}")
    if not bool(((qt >= 1) & (qt <= 2)).all()):
        raise ValueError(f"q must lie in [1, 2] (1 = sign descent, 2 = gradient flow), got "
                         f"{qt.min().item()}..{qt.max().item()}")
    return qt


def end_times(t_end, B: int, device) -> torch.Tensor:
    """``t_end`` (a number or one per trajectory) as a finite, non-negative ``(B,)`` tensor."""
    t_end = float64(t_end, "t_end", device)
    if t_end.shape not in ((), (1,), (B,)):
        raise ValueError(f"t_end must have shape () or ({B},) (one per trajectory), got {tuple(t_end.shape)}")
    if not bool(torch.isfinite(t_end).all()) or bool((t_end < 0).any()):
        raise ValueError("t_end must be finite and >= 0")
    return t_end.expand(B).clone()


def flow_options(q, rtol) -> dict:
    """What a flow is built with for a run: its exponents ``q`` and the stationarity tolerance,
    ``1e3 rtol`` relative to the initial gradient (:class:`numerics.flows.Flow`)."""
    return {"q": q, "stationary_tol": 1e3 * rtol}


def setup_run(system, y0, q, loss, *, device, params=None):
    """The :class:`~numerics.integrate.Params` of a run of ``system`` from ``y0`` and the number of
    its extra components. ``system`` must have been built for the exponents ``q``."""
    B = y0.shape[0]
    p = {"q": exponents(q, B, device)}
    if system.q_uniform != uniform_exponent(p["q"]):
        raise ValueError(f"the flow was built for a common exponent {system.q_uniform}, the run has "
                         f"{uniform_exponent(p['q'])} (build it with q=...)")
    p.update(loss.params(B, device))
    for k, v in (params or {}).items():
        v = torch.as_tensor(v, device=device)
        if v.shape[:1] != (B,):
            raise ValueError(f"parameter {k!r} must have one row per trajectory ({B}), got {tuple(v.shape)}")
        p[k] = v
    n_extra = system.check_user_functions(y0, p)
    # gradient scale of the stationarity test
    p["g_scale"] = loss.grad(system.model(y0), p).abs().amax(1).clamp_min(1e-300)
    return system.initialize(y0, p), n_extra
