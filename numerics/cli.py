"""The command-line contract shared by every ``python -m`` entry point of the package."""

from __future__ import annotations

import argparse
import sys


class Parser(argparse.ArgumentParser):
    """``argparse`` with the package's contract for bad usage: one line on stderr, exit status 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)
