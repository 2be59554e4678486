"""`python -m kaci.crds [DIR]`: write the CRDs (default crds/)."""

import sys

from kaci.crds import main

sys.exit(main(sys.argv))
