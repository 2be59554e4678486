"""kaci's stand-in for `azureml.exceptions` (the two score.py files catch)."""

from kaci_runtime.modelpath import ModelNotFoundException, WebserviceException

__all__ = ["ModelNotFoundException", "WebserviceException"]
