"""kaci's stand-in for `azureml.monitoring` (azureml-monitoring): `ModelDataCollector`."""

from kaci_runtime.modeldata import ModelDataCollector

__all__ = ["ModelDataCollector"]
