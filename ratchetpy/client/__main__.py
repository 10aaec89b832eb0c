"""``python -m ratchetpy.client URL``: see ``ratchetpy.client.cli``."""

import sys

from .cli import main

sys.exit(main())
