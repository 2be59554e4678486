"""kaci's stand-in for `azureml.core`: only what score.py files use at scoring time."""

from azureml.core.model import Model

__all__ = ["Model"]
