"""``python -m mcuq`` is the ``mcuq`` command."""

import sys

from mcuq.cli import main

sys.exit(main())
