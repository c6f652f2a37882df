"""Forward-mode derivatives (``torch.func.jvp``, ``torch.func.jacfwd``) without torch's own noise.

On its first forward-mode call torch scripts its JVP decompositions with ``torch.jit.script``,
which torch >= 2.9 reports as 18 ``DeprecationWarning``s about torch's internals, not about the
caller. The wrappers silence exactly that message; every other warning passes.
"""

from __future__ import annotations

import warnings

import torch

_TORCH_INTERNAL = r"`torch\.jit\.script` is deprecated"


def jvp(fn, primals, tangents):
    """``torch.func.jvp(fn, primals, tangents)``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TORCH_INTERNAL, category=DeprecationWarning)
        return torch.func.jvp(fn, primals, tangents)


def jacfwd(fn):
    """``torch.func.jacfwd(fn)``, callable under the same filter."""
    jac = torch.func.jacfwd(fn)

    def call(*args):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_TORCH_INTERNAL, category=DeprecationWarning)
            return jac(*args)
    return call
