"""kaci's stand-in: `AMLResponse` (a werkzeug Response) for @rawhttp score.py files."""

from kaci_runtime.amlhttp import AMLResponse

__all__ = ["AMLResponse"]
