"""Azure's azureml.core, the model-deployment part: Workspace, Model, Image, Webservice."""

from kaci.azureml.core.image import ContainerImage, Image
from kaci.azureml.core.model import Model
from kaci.azureml.core.webservice import AciWebservice, Webservice
from kaci.azureml.core.workspace import Workspace

__all__ = ["AciWebservice", "ContainerImage", "Image", "Model", "Webservice", "Workspace"]
