"""Azure's azureml.core.compute_target: where ComputeTargetException is imported from."""

from kaci.azureml.exceptions import ComputeTargetException

__all__ = ["ComputeTargetException"]
