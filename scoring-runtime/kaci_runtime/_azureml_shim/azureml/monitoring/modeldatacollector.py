"""kaci's stand-in for `azureml.monitoring.modeldatacollector`."""

from kaci_runtime.modeldata import ModelDataCollector

__all__ = ["ModelDataCollector"]
