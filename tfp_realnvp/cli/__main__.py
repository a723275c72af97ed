"""``python -m tfp_realnvp.cli``: the same as the ``tfp-realnvp`` command."""

import sys

from tfp_realnvp.cli import main

if __name__ == "__main__":
    sys.exit(main())
