"""``python -m speechbrain_relevance.export``: see the package docstring."""

import sys

from speechbrain_relevance.export import main

if __name__ == "__main__":
    sys.exit(main())
