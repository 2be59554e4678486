"""kaci's stand-in: `AMLResponse` for @rawhttp score.py files."""

from kaci_runtime.amlapi import AMLResponse

__all__ = ["AMLResponse"]
