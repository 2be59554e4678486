"""The contract, stdlib only: what the CRDs, the operator, the SDK and the CLI share.

Group, version, plurals, labels, annotations, condition types and reasons, Azure's
states, ports and Secret names. Everyone imports these from here; nobody copies a
literal. Changing a value here changes a public name: objects already in clusters
carry these labels and annotations.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

GROUP: Final = "kaci.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
# Field manager of every server-side apply, and app.kubernetes.io/managed-by.
MANAGER: Final = "kaci"
# app.kubernetes.io/managed-by on objects the SDK creates, so `kubectl get -l` finds them.
SDK_MANAGER: Final = "kaci-sdk"

MODEL: Final = "Model"
IMAGE: Final = "Image"
WEBSERVICE: Final = "Webservice"
PLURALS: Final = {MODEL: "models", IMAGE: "images", WEBSERVICE: "webservices"}
MODELS: Final = PLURALS[MODEL]
IMAGES: Final = PLURALS[IMAGE]
WEBSERVICES: Final = PLURALS[WEBSERVICE]
CATEGORY: Final = "kaci"

# Labels.
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
NAME_LABEL: Final = "app.kubernetes.io/name"
INSTANCE_NAME_LABEL: Final = "app.kubernetes.io/instance"
# app.kubernetes.io/name of a Webservice's Deployment, Pods, Service and Secret.
WEBSERVICE_APP: Final = "kaci-webservice"
# app.kubernetes.io/name of the short-lived Pod that reads a PVC model source.
MODEL_READER_APP: Final = "kaci-model-reader"
# The Webservice a child belongs to (its name).
WEBSERVICE_LABEL: Final = f"{GROUP}/webservice"
# The Model name an SDK upload belongs to.
MODEL_LABEL: Final = f"{GROUP}/model"
# Which operator instance handles an object (Settings.operator_instance).
INSTANCE_LABEL: Final = f"{GROUP}/operator"

# A registered Environment version (a ConfigMap the SDK writes): its object-name key
# and its version; the Azure name is in ENVIRONMENT_NAME_ANNOTATION.
ENVIRONMENT_LABEL: Final = f"{GROUP}/environment"
ENVIRONMENT_VERSION_LABEL: Final = f"{GROUP}/environment-version"
ENVIRONMENT_NAME_ANNOTATION: Final = f"{GROUP}/environment-name"
# The data key holding the Environment's definition (JSON) in that ConfigMap.
ENVIRONMENT_KEY: Final = "environment.json"

# Annotations. Pod-template ones roll the Pod when they change.
KEYS_HASH_ANNOTATION: Final = f"{GROUP}/keys-hash"
TEMPLATE_HASH_ANNOTATION: Final = f"{GROUP}/template-hash"
# On every child the operator applies: a hash of what it applied, so a pass compares
# its desired object with the observed one and skips an unchanged apply.
DESIRED_HASH_ANNOTATION: Final = f"{GROUP}/desired-hash"
# On a Webservice the SDK deployed: Azure's compute type (ACI or AKS).
COMPUTE_TYPE_ANNOTATION: Final = f"{GROUP}/compute-type"

# Condition types.
READY: Final = "Ready"
IMAGE_READY: Final = "ImageReady"
POD_READY: Final = "PodReady"
SERVICE_READY: Final = "ServiceReady"

# Azure's states. Image (and Model, for the CLI): NotStarted, Running, Succeeded, Failed.
NOT_STARTED: Final = "NotStarted"
RUNNING: Final = "Running"
SUCCEEDED: Final = "Succeeded"
FAILED: Final = "Failed"
# Webservice: Transitioning, Healthy, Unhealthy, Failed (and Unschedulable).
TRANSITIONING: Final = "Transitioning"
HEALTHY: Final = "Healthy"
UNHEALTHY: Final = "Unhealthy"
UNSCHEDULABLE: Final = "Unschedulable"

# Reasons a user or a tool may match on (conditions' reason, error.code).
REASON_STORED: Final = "Stored"
REASON_BAD_SOURCE: Final = "BadSource"
REASON_BAD_SPEC: Final = "BadSpec"
REASON_MODEL_NOT_FOUND: Final = "ModelNotFound"
REASON_MODEL_NOT_READY: Final = "ModelNotReady"
REASON_MODEL_FAILED: Final = "ModelFailed"
REASON_MODEL_VERSION_NOT_FOUND: Final = "ModelVersionNotFound"
REASON_BUILD_FAILED: Final = "BuildFailed"
REASON_ENGINE_UNAVAILABLE: Final = "EngineUnavailable"
REASON_BUILD_INTERRUPTED: Final = "BuildInterrupted"
REASON_IMAGE_NOT_FOUND: Final = "ImageNotFound"
REASON_IMAGE_FAILED: Final = "ImageFailed"
REASON_IMAGE_BUILDING: Final = "ImageBuilding"

# The scoring container's port, and the Service's.
SCORING_PORT: Final = 5001
SERVICE_PORT: Final = 80
# Where score.py and the models live in a scoring image (Azure's paths).
APP_DIR: Final = "/var/azureml-app"
MODELS_DIR: Final = f"{APP_DIR}/azureml-models"
# The keys Secret's data keys.
PRIMARY_KEY: Final = "primaryKey"
SECONDARY_KEY: Final = "secondaryKey"
# Token auth (tokenAuthEnabled): the HS256 key tokens are signed with, in the keys
# Secret; made once by the operator and kept.
TOKEN_SIGNING_KEY: Final = "tokenSigningKey"  # noqa: S105 (a data key name)


def keys_secret_name(webservice: str) -> str:
    """The Secret holding a Webservice's keys (authEnabled)."""
    return f"{webservice}-keys"


def token_audience(namespace: str, webservice: str) -> str:
    """A token's `aud`: the one Webservice it is good for."""
    return f"{namespace}/{webservice}"


def keys_hash(keys: dict[str, str] | None) -> str:
    """The Pod template's keys-hash annotation: it changes, and rolls the Pods, when
    the keys change (the SDK's regen_key waits for Pods that carry the new one)."""
    if not keys:
        return "none"
    blob = json.dumps(keys, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
