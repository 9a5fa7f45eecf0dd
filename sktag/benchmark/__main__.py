"""``python -m sktag.benchmark``: the ``sktag-benchmark`` command."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
