"""Webservices (Azure's azureml.core.webservice): Webservice and AciWebservice."""

from kaci.azureml.core.webservice.aci import AciServiceDeploymentConfiguration, AciWebservice
from kaci.azureml.core.webservice.webservice import Webservice

__all__ = ["AciServiceDeploymentConfiguration", "AciWebservice", "Webservice"]
