"""The ``induction-bigram`` command line: thin wrappers over the Python API.

Every command that runs something takes ``--preset NAME`` and ``--set key=value`` (the keys
of ``induction-bigram presets NAME``). With ``--json`` a command prints one JSON object on
stdout and nothing else (progress bars and warnings go to stderr). Errors are a single line on
stderr and a non-zero exit status (2 for bad input, 1 for anything else); set
``INDUCTION_BIGRAM_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

from induction_bigram.cli.parser import build_parser
from induction_bigram.errors import InductionBigramError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    from induction_bigram.cli.commands import run_command

    try:
        return run_command(build_parser().parse_args(argv))
    except KeyboardInterrupt:
        print("induction-bigram: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # one readable line; the traceback only on request
        if os.environ.get("INDUCTION_BIGRAM_DEBUG"):
            raise
        bad_input = isinstance(err, (InductionBigramError, OSError))
        if isinstance(err, OSError) and err.filename is not None and not isinstance(err, InductionBigramError):
            message = f"{err.strerror or err}: {err.filename}"
        else:
            message = str(err)
        kind = "error" if bad_input else f"internal error ({type(err).__name__})"
        print(f"induction-bigram: {kind}: {' '.join(message.split())}", file=sys.stderr)
        return 2 if bad_input else 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"induction-bigram: warning: {' '.join(str(message).split())}", file=sys.stderr)
