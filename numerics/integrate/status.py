"""Status codes of a trajectory at the end of :func:`numerics.integrate.integrate`.

Non-negative codes are successes (``Solution.success``), negative ones name the reason a
trajectory stopped early; ``RUNNING`` marks a trajectory still in the working set.
"""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    SUCCESS = 0
    EVENT = 1
    STEP_BUDGET = -1
    WALL_BUDGET = -2
    STEP_UNDERFLOW = -3
    NONFINITE = -4


RUNNING = 100

MESSAGES = {
    Status.SUCCESS: "reached t_end",
    Status.EVENT: "terminal event",
    Status.STEP_BUDGET: "step budget exhausted",
    Status.WALL_BUDGET: "wall-time budget exhausted",
    Status.STEP_UNDERFLOW: "step size underflow (h < 10 eps |t|)",
    Status.NONFINITE: "non-finite state or field",
}
