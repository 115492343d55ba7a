"""``python -m fabshim``: see ``fabshim.cli``."""

import sys

from .cli import main

sys.exit(main())
