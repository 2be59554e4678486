"""Webservices (Azure's azureml.core.webservice): ACI, AKS and local ones."""

from kaci.azureml.core.webservice.aci import AciServiceDeploymentConfiguration, AciWebservice
from kaci.azureml.core.webservice.aks import AksServiceDeploymentConfiguration, AksWebservice
from kaci.azureml.core.webservice.local import (
    LocalWebservice,
    LocalWebserviceDeploymentConfiguration,
)
from kaci.azureml.core.webservice.webservice import Webservice

__all__ = [
    "AciServiceDeploymentConfiguration",
    "AciWebservice",
    "AksServiceDeploymentConfiguration",
    "AksWebservice",
    "LocalWebservice",
    "LocalWebserviceDeploymentConfiguration",
    "Webservice",
]
