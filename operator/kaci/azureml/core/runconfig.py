"""Azure's azureml.core.runconfig, the part deployment code imports from it."""

from kaci.azureml.core.conda_dependencies import CondaDependencies

__all__ = ["CondaDependencies"]
