"""Azure's azureml.core, the model-deployment part.

`VERSION` is the azureml-core release whose API kaci mirrors (scripts print it and
compare it); kaci's own version is `kaci.azureml.core.KACI_VERSION`.
"""

from importlib import metadata as _metadata

from kaci.azureml.core.compute import ComputeTarget
from kaci.azureml.core.conda_dependencies import CondaDependencies
from kaci.azureml.core.environment import Environment
from kaci.azureml.core.image import ContainerImage, Image
from kaci.azureml.core.model import InferenceConfig, Model
from kaci.azureml.core.resource_configuration import ResourceConfiguration
from kaci.azureml.core.webservice import AciWebservice, AksWebservice, LocalWebservice, Webservice
from kaci.azureml.core.workspace import Workspace

VERSION = "1.57.0"
__version__ = VERSION
try:
    KACI_VERSION = _metadata.version("kaci")
except _metadata.PackageNotFoundError:  # a source tree without an install
    KACI_VERSION = "0+unknown"

__all__ = [
    "VERSION",
    "AciWebservice",
    "AksWebservice",
    "ComputeTarget",
    "CondaDependencies",
    "ContainerImage",
    "Environment",
    "Image",
    "InferenceConfig",
    "LocalWebservice",
    "Model",
    "ResourceConfiguration",
    "Webservice",
    "Workspace",
]
