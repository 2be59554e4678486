"""Pure name rules: Azure names -> Kubernetes object names, ids, config keys."""

from __future__ import annotations

import hashlib
import re

from kaci import api
from kaci.azureml.exceptions import UserErrorException

GROUP, VERSION, API_VERSION = api.GROUP, api.VERSION, api.API_VERSION

# Same rules as the CRDs (operator/kaci/crds/), checked here too so a bad name
# fails before anything is uploaded.
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
IMAGE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,30}[a-z0-9]$")
SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
_K8S_BAD = re.compile(r"[^a-z0-9.-]+")
CONFIGMAP_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")

LABEL_MODEL = api.MODEL_LABEL
LABEL_WEBSERVICE = api.WEBSERVICE_LABEL
LABEL_MANAGED_BY = api.MANAGED_BY_LABEL
# Set on objects the SDK creates, so `kubectl get -l` finds them.
SDK_MANAGER = api.SDK_MANAGER


def model_object_name(model_name: str) -> str:
    """The Model object's metadata.name for an Azure model name.

    Azure allows upper case and underscores (`sklearn_mnist`); Kubernetes names do
    not. Names that are already valid are kept, others are lowered and cleaned and
    get a short hash of the original so `A_b` and `a-b` stay distinct objects.
    """
    validate_model_name(model_name)
    cleaned = _K8S_BAD.sub("-", model_name.lower()).strip("-.")
    if cleaned == model_name and len(cleaned) <= 63:
        return cleaned
    suffix = hashlib.sha256(model_name.encode()).hexdigest()[:6]
    return f"{cleaned[:56].strip('-.') or 'model'}-{suffix}"


def validate_model_name(model_name: str) -> None:
    if not isinstance(model_name, str) or not MODEL_NAME_RE.match(model_name):
        raise UserErrorException(
            f"invalid model name {model_name!r}: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, at most 255 characters"
        )


def validate_image_name(name: str) -> None:
    if not isinstance(name, str) or not IMAGE_NAME_RE.match(name):
        raise UserErrorException(
            f"invalid image name {name!r}: 3-32 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit"
        )


def validate_service_name(name: str) -> None:
    if not isinstance(name, str) or not SERVICE_NAME_RE.match(name):
        raise UserErrorException(
            f"invalid service name {name!r}: 3-32 lowercase letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )


def split_id(object_id: str) -> tuple[str, int | None]:
    """Azure ids are `<name>:<version>`; the version part is optional here."""
    name, sep, version = object_id.rpartition(":")
    if not sep:
        return object_id, None
    if not version.isdigit() or not name:
        raise UserErrorException(f"invalid id {object_id!r}: expected <name>:<version>")
    return name, int(version)


def content_name(prefix: str, digest: str, limit: int = 63) -> str:
    """A content-addressed object name: `<prefix>-<10 hex of digest>`."""
    hexpart = digest.removeprefix("sha256:")[:10]
    return f"{prefix[: limit - 11].rstrip('-.')}-{hexpart}"
