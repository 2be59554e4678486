"""Images (Azure's azureml.core.image): ContainerImage and its configuration."""

from kaci.azureml.core.image.container import ContainerImage, ContainerImageConfig
from kaci.azureml.core.image.image import Image

__all__ = ["ContainerImage", "ContainerImageConfig", "Image"]
