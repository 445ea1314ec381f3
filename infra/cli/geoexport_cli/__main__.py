"""``python -m geoexport_cli``: the same as the ``geoexport`` command."""

import sys

from geoexport_cli import main

sys.exit(main())
