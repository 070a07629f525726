"""``python -m blendlab.cli``: the ``blendlab`` command.

May import: blendlab.cli.
"""

import sys

from . import main

sys.exit(main())
