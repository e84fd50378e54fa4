"""The ``iopscreen`` console script.

It imports the command line only inside :func:`main`, so a Ctrl-C pressed while those imports are
still loading (the first fraction of a second) ends with exit 130 and one line, not a traceback.
"""

from __future__ import annotations

import sys
from importlib import import_module


def main() -> None:
    try:
        cli = import_module("iopscreen.cli")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    cli.main()
