"""``python -m geopipe.cli`` runs the ``geopipe`` command."""

import sys

from geopipe.cli import main

sys.exit(main())
