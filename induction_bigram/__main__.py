"""``python -m induction_bigram`` is the ``induction-bigram`` command."""

import sys

from induction_bigram.cli import main

sys.exit(main())
