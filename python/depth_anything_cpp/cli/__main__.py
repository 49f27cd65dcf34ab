"""``python -m depth_anything_cpp.cli``: the ``da3cpp`` command."""

import sys

from . import main

sys.exit(main())
