"""``python -m poh_holdmetrics``: the poh-holdmetrics command line."""

import sys

from ._cli import main

sys.exit(main())
