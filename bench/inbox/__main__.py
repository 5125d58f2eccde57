"""`python -m bench.inbox`: see the package's docstring."""

import sys

from bench.inbox import main

sys.exit(main())
