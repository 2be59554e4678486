"""kaci's stand-in: `rawhttp` and `AMLRequest` for score.py files that want the raw request."""

from kaci_runtime.amlapi import AMLRequest, rawhttp

__all__ = ["AMLRequest", "rawhttp"]
