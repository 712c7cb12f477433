"""``python -m eventgrad``: the command line (:mod:`eventgrad.experiments.cli`)."""

import sys

from .experiments.cli import main

sys.exit(main())
