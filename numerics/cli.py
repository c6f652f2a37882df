"""The command-line contract shared by every ``python -m`` entry point of the package."""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile


class Parser(argparse.ArgumentParser):
    """``argparse`` with the package's contract for bad usage: one line on stderr, exit status 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def description(doc: str) -> str:
    """A module docstring's first paragraph as plain text for ``--help`` (no reST markup)."""
    return " ".join(doc.strip().split("\n\n")[0].split()).replace("``", "")


def piped(main, *args) -> int:
    """``main(*args)``'s exit status; output into a pipe whose reader has gone (``| head``) ends
    the command quietly with status 141 (128 + SIGPIPE, as Unix tools end), not a traceback."""
    try:
        code = main(*args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
        return 141


def readable(path) -> None:
    """Give a file made by ``tempfile.mkstemp`` (mode 0600) the mode of an ordinary new file:
    ``0666`` less the process umask (world-readable under the usual umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def device(value: str) -> str:
    """``--device`` type: ``cpu``, or ``cuda`` where a CUDA device is present."""
    if value not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"invalid choice {value!r} (choose from 'cpu', 'cuda')")
    if value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError("'cuda' is not available on this machine "
                                             "(no CUDA device or a CPU-only torch); use --device cpu")
    return value


def add_device(p: argparse.ArgumentParser, what: str = "where the simulations run") -> None:
    """The shared ``--device`` flag, checked before any work starts."""
    p.add_argument("--device", default="cpu", type=device, metavar="{cpu,cuda}",
                   help=f"cpu or cuda: {what} (default cpu)")


def positive(kind=float):
    """An ``argparse`` type: a finite number of ``kind`` that is > 0 (a budget of ``inf`` is no
    budget: refused)."""
    def parse(value: str):
        try:
            v = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {value!r}") from None
        if not (v > 0 and math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {value}")
        return v
    parse.__name__ = f"positive {kind.__name__}"
    return parse


SEED_MAX = 2**32 - 1


def seed(value: str) -> int:
    """``--seed`` type: an integer in ``[0, 2^32)``, a seed NumPy's and torch's generators take."""
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if not 0 <= v <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {SEED_MAX}], got {v}")
    return v


def add_seed(p: argparse.ArgumentParser, what: str) -> None:
    """The shared ``--seed`` flag, checked before any work starts."""
    p.add_argument("--seed", type=seed, default=0,
                   help=f"seed of {what}, an integer in [0, 2^32) (default 0)")


def writable_folder(path: str) -> None:
    """Check that a file can be written in the folder ``path`` (created for the test and removed
    again if it did not exist: a check leaves nothing behind); ``ValueError`` saying what to do
    otherwise."""
    new, probe = None, os.path.abspath(path)
    while not os.path.exists(probe):
        new, probe = probe, os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ValueError(f"{probe!r} is a file, not a folder; choose a folder")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ValueError(f"cannot write in {path!r} ({exc.strerror}); choose a writable folder") from None
    finally:
        if new is not None:
            shutil.rmtree(new, ignore_errors=True)
