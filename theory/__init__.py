"""Symbolic side of steepmirror: derive mirror potentials, balance laws, escape times.

Everything here is SymPy; nothing integrates an ODE. Public API::

    theory.mirror_potential(L=3, q=1.5)                 # MIR-1 Potential
    theory.mirror_potential(L=2, q=1.5, imbalance=0.7)  # MIR-2
    theory.escape_time(L=3, q=1.5, alpha=0.1, y=1.0, target=0.5)   # ESC-1
    theory.escape_class(L=3, q=2.0)                     # ESC-2
    theory.equilibrium(L=2, q=1.0, nu=0.8, y=3.0, decay="decoupled")   # DEC-2: min(y, nu^-L)
    theory.escape_or_collapse(L=3, q=2.0, nu=0.3, y=1.0, alpha=0.05, decay="coupled")  # DEC-3
    theory.step_count(L=3, alpha=1e-3, method="gd")     # ESC-4 at the largest stable step
    theory.reparam.scalar("sinh(w)").potential(q=1.5)   # MIR-5
    theory.model("w**3 + w")                            # MIR-5 model: potential, kernels
    theory.MODELS                                       # the registered (committed) models
    theory.GEOMETRIES                                   # the registered mirror geometries (MIR-1..3, MIR-1b)
"""

from . import reparam
from .escape import arrival_time, coercivity, escape_class, escape_time, metric_exponent
from .decay_equilibria import equilibrium, escape_or_collapse
from .mirror import mirror_potential
from .steps import largest_stable_step, step_count
from .geometries import GEOMETRIES
from .models import MODELS, model
from .potentials import Potential

__all__ = ["equilibrium", "escape_or_collapse", "largest_stable_step", "step_count", "mirror_potential", "escape_time", "arrival_time", "escape_class", "coercivity",
           "metric_exponent", "reparam", "Potential", "MODELS", "GEOMETRIES", "model"]
