"""kaci's stand-in: `rawhttp` and `AMLRequest` for score.py files that want the raw request."""

from kaci_runtime.amlapi import rawhttp
from kaci_runtime.amlhttp import AMLRequest

__all__ = ["AMLRequest", "rawhttp"]
