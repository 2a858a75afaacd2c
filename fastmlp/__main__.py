"""`python -m fastmlp ...` runs the fastmlp command line."""

import sys

from fastmlp.cli import main

if __name__ == "__main__":
    sys.exit(main())
