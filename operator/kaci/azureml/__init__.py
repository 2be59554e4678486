"""kaci.azureml: Azure ML SDK v1's model-deployment calls, on top of kaci's CRDs.

Code written for `azureml.core` runs with only the import prefix changed:
`from azureml.core.webservice import AciWebservice` becomes
`from kaci.azureml.core.webservice import AciWebservice`. Class names, method
names, parameters and defaults follow azureml-core 1.57; what has no meaning on
Kubernetes is refused or warned about (KaciCompatibilityWarning), never
silently dropped.

`from kaci import azureml` then makes `azureml.core.VERSION`, `azureml.core.Model`
and the rest work, so `import azureml.core` becomes that one line.
"""

from kaci.azureml import core
from kaci.azureml.exceptions import KaciCompatibilityWarning

__all__ = ["KaciCompatibilityWarning", "core"]
