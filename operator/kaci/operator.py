"""`python -m kaci.operator`: run the kopf operator for kaci's three kinds."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import kopf

import kaci.handlers  # noqa: F401  (registers the handlers)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kaci.operator", description=__doc__)
    p.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); all namespaces when omitted",
    )
    p.add_argument(
        "--liveness",
        default=None,
        help="serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz",
    )
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(
        kopf.operator(
            clusterwide=not args.namespace,
            namespaces=list(args.namespace),
            standalone=True,
            liveness_endpoint=args.liveness,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
