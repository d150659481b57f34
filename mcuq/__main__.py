"""``python -m mcuq`` is the ``mcuq`` command."""

import sys

from .cli import main

sys.exit(main())
