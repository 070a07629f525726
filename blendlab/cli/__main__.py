"""``python -m blendlab.cli``: the ``blendlab`` command (Ctrl-C while Python starts is one line too).

May import: blendlab.cli.
"""

import sys

try:
    from . import main
except KeyboardInterrupt:
    print("blendlab: interrupted while starting; nothing was done", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
