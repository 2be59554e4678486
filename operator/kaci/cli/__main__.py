"""`python -m kaci.cli`."""

import sys

from kaci.cli import main

sys.exit(main())
