"""Batched adaptive integration in torch with per-trajectory step control, dense output,
events, mode freezing for discontinuous fields, and budgets.

Modules, one seam each (as diffrax and torchode cut an integrator): :mod:`.tableau`
(self-checking Butcher tableaus), :mod:`.stepper` (the stepper interface, DOP853, the
registry ``STEPPERS``), :mod:`.controller` (step-size control with its own state),
:mod:`.dense` (dense output), :mod:`.events` (event location), :mod:`.hybrid` (mode freezing
and switches), :mod:`.rows` (per-trajectory parameters and switching state, :class:`Params`),
:mod:`.status` (status codes), :mod:`.driver` (the loop and budgets).
"""

from .controller import ConstantStep, Controller, ControllerState
from .dense import DenseOutput
from .driver import integrate
from .events import Event
from .solution import Solution
from .status import MESSAGES, Status
from .stepper import DOP853Stepper, STEPPERS, Step, Stepper, register_stepper
from .rosenbrock import Rodas5Stepper
from .rows import Params
from .system import ODESystem

SUCCESS, EVENT = Status.SUCCESS, Status.EVENT
STEP_BUDGET, WALL_BUDGET = Status.STEP_BUDGET, Status.WALL_BUDGET
STEP_UNDERFLOW, NONFINITE = Status.STEP_UNDERFLOW, Status.NONFINITE

__all__ = ["integrate", "ODESystem", "Params", "Event", "Solution", "Status", "MESSAGES", "DenseOutput",
           "Stepper", "Step", "DOP853Stepper", "Rodas5Stepper", "STEPPERS", "register_stepper",
           "Controller", "ConstantStep", "ControllerState",
           "SUCCESS", "EVENT", "STEP_BUDGET", "WALL_BUDGET", "STEP_UNDERFLOW", "NONFINITE"]
