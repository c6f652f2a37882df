import os
import subprocess

import pytest
import torch
from hypothesis import HealthCheck, settings

from numerics.integrate import WALL_BUDGET

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


HANG_GUARD_S = 600.0     # seconds: far beyond any run's need on a loaded 2-core machine


@pytest.fixture(scope="session")
def guarded():
    """``guarded(simulate, *args, **kw)``: ``simulate(*args, max_wall=HANG_GUARD_S, **kw)``, for runs
    whose budget is a step count (``max_steps``/``max_events``). The wall budget is only a hang
    guard: a run it stops skips the test (the machine was too slow to judge it), never passes or
    fails it. Session-scoped so that Hypothesis tests can use it."""
    def run(simulate, *args, **kw):
        res = simulate(*args, max_wall=HANG_GUARD_S, **kw)
        status = res.solution.status
        stopped = int((status == WALL_BUDGET).sum())
        if stopped:
            pytest.skip(f"hang guard: {stopped} of {len(status)} trajectories ran past {HANG_GUARD_S:g} s of "
                        "wall time before their step budget; no verdict on this machine")
        return res
    return run


def run_guarded(args, timeout: float = HANG_GUARD_S, **kw) -> subprocess.CompletedProcess:
    """``subprocess.run(args)`` capturing text output; its ``timeout`` is only a hang guard: an
    overrun skips the test (no verdict), it never passes or fails it."""
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        pytest.skip(f"hang guard: {' '.join(map(str, args))[:80]} ran past {timeout:g} s; no verdict")
