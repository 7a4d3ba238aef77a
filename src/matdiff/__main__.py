"""``python -m matdiff``: the matdiff command."""

import sys

from .cli import main

sys.exit(main())
