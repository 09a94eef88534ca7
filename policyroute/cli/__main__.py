"""`python -m policyroute.cli`."""

import sys

from . import main

sys.exit(main())
