"""The `kaci` command line (console script `kaci = kaci.cli:main`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from kaci.cli.app import main as app_main

    return app_main(argv)


if __name__ == "__main__":
    sys.exit(main())
