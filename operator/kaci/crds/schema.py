"""The parts of kaci's CRD schemas that several kinds share (pure)."""

from __future__ import annotations

from typing import Any

from kaci.api import GROUP, VERSION

Schema = dict[str, Any]

# Azure's naming rules, as far as a schema can say them.
# ACI service names: 3-32 chars, lowercase letters, digits and dashes, starting
# with a letter and not ending with a dash.
SERVICE_NAME_RE = "^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
# Azure ML image names: lowercase letters, digits, dots and dashes, 3-32 chars.
# They also become a registry path component, which must be lowercase.
IMAGE_NAME_RE = "^[a-z0-9][a-z0-9.-]{1,30}[a-z0-9]$"
# Azure ML model names: letters, digits, dashes, underscores and dots (<= 255).
MODEL_NAME_RE = "^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"
# A Kubernetes object name (DNS subdomain) that a spec refers to.
K8S_NAME_RE = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def _str(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _map(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {"type": "string"},
    }


def _exactly_one(fields: list[str], what: str) -> dict[str, str]:
    """A CEL rule: exactly one of `fields` is set."""
    count = " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields)
    names = ", ".join(fields)
    return {"rule": f"{count} == 1", "message": f"{what}: set exactly one of {names}"}


def _ref(description: str) -> Schema:
    return _str(description, maxLength=253, pattern=K8S_NAME_RE)


def model_source_schema(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "properties": {
            "configMap": {
                "type": "object",
                "description": "Files from a ConfigMap: each key (data or binaryData) is a file.",
                "required": ["name"],
                "properties": {
                    "name": _ref("ConfigMap name, in the same namespace."),
                    "keys": {
                        "type": "array",
                        "description": "Keys to use as files; all keys when omitted.",
                        "items": {"type": "string", "maxLength": 253},
                        "maxItems": 64,
                    },
                },
            },
            "url": {
                "type": "object",
                "description": "One file downloaded over http(s).",
                "required": ["url"],
                "properties": {
                    "url": _str(
                        "http:// or https:// URL of the file.",
                        maxLength=2048,
                        pattern="^https?://",
                    ),
                    "sha256": _str(
                        "Expected SHA-256 of the file (hex); a mismatch fails the Model.",
                        pattern="^[a-fA-F0-9]{64}$",
                    ),
                    "fileName": _str(
                        "File name to store it under; default the URL path's last part.",
                        maxLength=253,
                    ),
                },
            },
            "pvc": {
                "type": "object",
                "description": "A file or folder on a PersistentVolumeClaim.",
                "required": ["claimName", "path"],
                "properties": {
                    "claimName": _ref("PersistentVolumeClaim name, in the same namespace."),
                    "path": _str("File or folder inside the volume.", maxLength=1024),
                },
            },
            "image": {
                "type": "object",
                "description": "An OCI image holding the model files.",
                "required": ["reference"],
                "properties": {
                    "reference": _str(
                        "Image reference (pullable by the build engine).",
                        maxLength=512,
                        minLength=1,
                    ),
                    "path": _str(
                        "Folder inside the image holding the files (default /).", maxLength=1024
                    ),
                },
            },
        },
        "x-kubernetes-validations": [
            _exactly_one(["configMap", "url", "pvc", "image"], "source"),
        ],
    }


def _text_source(description: str, what: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "properties": {
            "inline": _str("The text itself.", maxLength=262144),
            "configMap": {
                "type": "object",
                "required": ["name", "key"],
                "properties": {
                    "name": _ref("ConfigMap name, in the same namespace."),
                    "key": _str("Key in the ConfigMap.", maxLength=253),
                },
            },
        },
        "x-kubernetes-validations": [_exactly_one(["inline", "configMap"], what)],
    }


def _model_refs(description: str) -> Schema:
    return {
        "type": "array",
        "description": description + " May be empty (a score.py that needs no model).",
        "minItems": 0,
        "maxItems": 32,
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": _str(
                    "Model name (spec.modelName of a Model).", maxLength=255, pattern=MODEL_NAME_RE
                ),
                "version": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Model version; the latest when omitted.",
                },
            },
        },
    }


def image_config_properties() -> dict[str, Schema]:
    return {
        "executionScript": _text_source(
            "The score.py (init() and run(raw_data)).", "executionScript"
        ),
        "runtime": {
            "type": "string",
            "description": "Only python (Azure's spark-py is not supported).",
            "default": "python",
            "maxLength": 32,
            "x-kubernetes-validations": [
                {
                    "rule": "self == 'python'",
                    "messageExpression": (
                        "'runtime \"' + self + '\" is not supported: kaci runs Python "
                        "score.py files only; set runtime: python'"
                    ),
                }
            ],
        },
        "condaFile": _text_source(
            "Azure's conda environment file (myenv.yml); its pip and conda packages are "
            "installed with pip.",
            "condaFile",
        ),
        "pipRequirements": {
            "type": "array",
            "description": "Extra pip requirements.",
            "items": {"type": "string", "maxLength": 512},
            "maxItems": 256,
        },
        "dockerSteps": _str(
            "Extra Dockerfile lines (Azure's docker_file), run as root after the "
            "packages are installed and before the model and score.py are added.",
            maxLength=65536,
        ),
        "baseImage": _str("Base image; the operator's default when omitted.", maxLength=512),
        "layerCompression": {
            "type": "string",
            "description": "Compression of the scoring image's pushed layers; the operator's "
            "default (zstd) when omitted. gzip for engines that cannot pull zstd (Docker "
            "Engine before 23, e.g. to `docker run` the image locally).",
            "enum": ["zstd", "gzip", "uncompressed"],
        },
        "sourceDirectory": {
            "type": "object",
            "description": "Azure's source_directory: a code folder put at the app root "
            "(/var/azureml-app), so score.py imports its sibling modules. Held, like large "
            "model files, as an OCI image in the registry.",
            "required": ["image"],
            "properties": {
                "image": {
                    "type": "object",
                    "required": ["reference"],
                    "properties": {
                        "reference": _str(
                            "Image reference (pullable by the build engine).",
                            maxLength=512,
                            minLength=1,
                        ),
                        "path": _str(
                            "Folder inside the image holding the code (default /).",
                            maxLength=1024,
                        ),
                    },
                }
            },
        },
        "environmentVariables": {
            **_map(
                "Environment variables of the scoring container (Azure's "
                "Environment.environment_variables)."
            ),
            "maxProperties": 256,
            "x-kubernetes-validations": [
                {
                    "rule": "self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",
                    "message": "environment variable names are letters, digits and "
                    "underscores, not starting with a digit",
                }
            ],
        },
        "description": _str("Free text.", maxLength=4096),
        "tags": _map("Free key/value tags."),
    }


def _condition_schema() -> Schema:
    return {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "type": {"type": "string"},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "reason": {"type": "string"},
                "message": {"type": "string"},
                "observedGeneration": {"type": "integer"},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
            },
        },
    }


def _name_version_list() -> Schema:
    return {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "integer"},
                "object": {
                    "type": "string",
                    "description": "The Model object this version came from (several may "
                    "share a modelName; see the README's 'Which Model an Image takes').",
                },
            },
        },
    }


def _crd(
    kind: str,
    plural: str,
    short: str,
    spec: Schema,
    status: Schema,
    columns: list[Schema],
    root_rules: list[dict[str, str]] | None = None,
    scale: Schema | None = None,
) -> Schema:
    root: Schema = {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }
    if root_rules:
        root["x-kubernetes-validations"] = root_rules
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "kaci"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["kaci"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, **({"scale": scale} if scale else {})},
                    "additionalPrinterColumns": [
                        *columns,
                        # Every kind has a Ready condition: one column reads the same everywhere.
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def _status(props: dict[str, Schema]) -> Schema:
    return {
        "type": "object",
        "properties": {
            **props,
            "conditions": _condition_schema(),
            "observedGeneration": {"type": "integer"},
        },
    }
