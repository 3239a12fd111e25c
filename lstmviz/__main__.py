"""``python -m lstmviz`` is the same as the ``lstmviz`` command."""

import sys

from lstmviz.cli import main

sys.exit(main())
