"""The CustomResourceDefinitions: kaci's three kinds, built from shared sub-schemas,
and kopf's two peering kinds (several operator replicas, one acting).

`crds/*.yaml` are generated from here (`python -m kaci.crds crds/`) so that the
parts Model and Webservice share (a model source) and the parts Image and
Webservice share (the image configuration) cannot drift apart. A unit test checks
the committed YAML equals what this module renders.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

GROUP = "kaci.dev"
VERSION = "v1alpha1"

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
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        *columns,
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


def model_crd() -> Schema:
    spec: Schema = {
        "type": "object",
        "required": ["source"],
        "properties": {
            "modelName": _str(
                "Model name (Azure's); defaults to metadata.name.",
                maxLength=255,
                pattern=MODEL_NAME_RE,
            ),
            "source": model_source_schema("Where the model files come from."),
            "tags": _map("Free key/value tags."),
            "properties": _map("Free key/value properties."),
            "description": _str("Free text.", maxLength=4096),
            "framework": _str("Framework name, e.g. ScikitLearn.", maxLength=128),
        },
    }
    status = _status(
        {
            "version": {"type": "integer"},
            "digest": {"type": "string"},
            "location": {"type": "string"},
            "files": {"type": "array", "items": {"type": "string"}},
            "versions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "version": {"type": "integer"},
                        "digest": {"type": "string"},
                        "location": {"type": "string"},
                        "created": {"type": "string"},
                    },
                },
            },
        }
    )
    columns: list[Schema] = [
        {"name": "Version", "type": "integer", "jsonPath": ".status.version"},
        {"name": "Digest", "type": "string", "jsonPath": ".status.digest"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
    ]
    return _crd("Model", "models", "kmod", spec, status, columns)


def image_crd() -> Schema:
    spec: Schema = {
        "type": "object",
        "required": ["models", "executionScript"],
        "properties": {
            "imageName": _str(
                "Image name (Azure's); defaults to metadata.name.",
                maxLength=32,
                pattern=IMAGE_NAME_RE,
            ),
            "models": _model_refs("Models to put in the image."),
            **image_config_properties(),
        },
    }
    status = _status(
        {
            "version": {"type": "integer"},
            "state": {"type": "string", "enum": ["NotStarted", "Running", "Succeeded", "Failed"]},
            "imageLocation": {"type": "string"},
            "contentHash": {"type": "string"},
            "models": _name_version_list(),
            "buildLog": {"type": "string"},
        }
    )
    columns: list[Schema] = [
        {"name": "Version", "type": "integer", "jsonPath": ".status.version"},
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Location", "type": "string", "jsonPath": ".status.imageLocation"},
    ]
    rules = [
        {
            "rule": "has(self.spec.imageName) || self.metadata.name.matches('"
            + IMAGE_NAME_RE
            + "')",
            "message": "an Image named like this needs spec.imageName: image names are "
            "3-32 lowercase letters, digits, dots and dashes",
        }
    ]
    return _crd("Image", "images", "kimg", spec, status, columns, rules)


def webservice_crd() -> Schema:
    source = model_source_schema(
        "Model files to deploy (Azure's model_paths): the operator registers a Model "
        "and builds an Image, both named like the Webservice."
    )
    source["properties"]["modelName"] = _str(
        "Name of the Model registered from these files (what score.py passes to "
        "Model.get_model_path); defaults to the Webservice's name.",
        maxLength=255,
        pattern=MODEL_NAME_RE,
    )
    spec: Schema = {
        "type": "object",
        "required": ["deploymentConfig"],
        "properties": {
            "modelFiles": source,
            "models": _model_refs("Registered models to deploy (Azure's deploy_from_model)."),
            "image": {
                "type": "object",
                "description": "A built Image to deploy (Azure's deploy_from_image).",
                "required": ["name"],
                "properties": {
                    "name": _str(
                        "spec.imageName of an Image.", maxLength=32, pattern=IMAGE_NAME_RE
                    ),
                    "version": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "Image version; the latest when omitted.",
                    },
                },
            },
            "imageConfig": {
                "type": "object",
                "description": "How to build the image (with modelFiles or models).",
                "required": ["executionScript"],
                "properties": image_config_properties(),
            },
            "deploymentConfig": {
                "type": "object",
                "required": ["cpuCores", "memoryGb"],
                "properties": {
                    "cpuCores": {
                        "type": "number",
                        "description": "CPU cores (request = limit), e.g. 0.1, 0.5, 1, 2.",
                        "x-kubernetes-validations": [
                            {
                                "rule": "self > 0.0",
                                "message": "cpuCores must be greater than 0 (fractions like 0.1 "
                                "are fine)",
                            }
                        ],
                    },
                    "memoryGb": {
                        "type": "number",
                        "description": "Memory in GB (request = limit), e.g. 0.5, 1, 1.5.",
                        "x-kubernetes-validations": [
                            {
                                "rule": "self > 0.0",
                                "message": "memoryGb must be greater than 0 (fractions like 0.5 "
                                "are fine)",
                            }
                        ],
                    },
                    "authEnabled": {
                        "type": "boolean",
                        "default": False,
                        "description": "Demand a key (Authorization: Bearer).",
                    },
                    "tags": _map("Free key/value tags."),
                    "description": _str("Free text.", maxLength=4096),
                },
            },
        },
        "x-kubernetes-validations": [
            _exactly_one(["modelFiles", "models", "image"], "a Webservice deploys"),
            {
                "rule": "has(self.image) || has(self.imageConfig)",
                "message": "imageConfig (at least executionScript) is required with "
                "modelFiles or models",
            },
            {
                "rule": "!has(self.image) || !has(self.imageConfig)",
                "message": "imageConfig is not used with image: the Image is already built",
            },
        ],
    }
    status = _status(
        {
            "state": {
                "type": "string",
                "enum": ["Transitioning", "Healthy", "Unhealthy", "Failed", "Unschedulable"],
            },
            "scoringUri": {"type": "string"},
            "swaggerUri": {"type": "string"},
            "imageLocation": {"type": "string"},
            "image": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "version": {"type": "integer"}},
            },
            "models": _name_version_list(),
            "error": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            },
            "keysSecret": {"type": "string"},
        }
    )
    columns: list[Schema] = [
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "CPU", "type": "number", "jsonPath": ".spec.deploymentConfig.cpuCores"},
        {"name": "Memory", "type": "number", "jsonPath": ".spec.deploymentConfig.memoryGb"},
        {"name": "URI", "type": "string", "jsonPath": ".status.scoringUri"},
    ]
    rules = [
        {
            "rule": "self.metadata.name.matches('" + SERVICE_NAME_RE + "')",
            "message": "a Webservice name must be 3-32 characters of lowercase letters, digits "
            "and dashes, start with a letter and not end with a dash (Azure's rule)",
        }
    ]
    return _crd("Webservice", "webservices", "kws", spec, status, columns, rules)


PEERING_GROUP = "kopf.dev"


def peering_crd(*, clusterwide: bool) -> Schema:
    """kopf's peering kind, which kopf reads but does not install: ClusterKopfPeering
    (cluster-scoped, for an operator watching every namespace) or KopfPeering (in each
    watched namespace). Operators sharing one such object see each other's keep-alives
    in its status and only the highest priority acts (`python -m kaci.operator --peering`).

    The shape is what kopf writes: status maps each operator's identity to its
    priority, lifetime and last keep-alive; kopf merges and deletes entries with merge
    patches of the whole object. No status subresource on purpose: other kopf-based
    operators in a cluster may have installed these CRDs first (Helm then keeps theirs,
    which have none), and kopf patches the main object when there is none, so the
    operator's RBAC (patch on the resource) fits either way. Labelled part-of kopf, not
    kaci: removing kaci's CRDs must not remove what other operators may share.
    """
    kind, plural = ("ClusterKopfPeering", "clusterkopfpeerings")
    if not clusterwide:
        kind, plural = ("KopfPeering", "kopfpeerings")
    peer: Schema = {
        "type": "object",
        "description": "One operator's keep-alive.",
        "properties": {
            "priority": {"type": "integer", "description": "The highest live priority acts."},
            "lifetime": {
                "type": "integer",
                "description": "Seconds after lastseen at which the operator counts as dead.",
            },
            "lastseen": {"type": "string", "description": "Time of the last keep-alive."},
        },
        # Fields a later kopf may add (kopf's Peer accepts unknown ones).
        "x-kubernetes-preserve-unknown-fields": True,
    }
    root: Schema = {
        "type": "object",
        "description": "A peering neighbourhood of kopf operators; operators with the same "
        "peering name see each other here.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "status": {
                "type": "object",
                "description": "Operator identity -> its keep-alive (written by kopf).",
                "additionalProperties": peer,
            },
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{PEERING_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "kopf"},
        },
        "spec": {
            "group": PEERING_GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "scope": "Cluster" if clusterwide else "Namespaced",
            "versions": [
                {
                    # The version kopf looks for (kopf.dev/v1).
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def all_crds() -> dict[str, Schema]:
    """File name -> CRD, as committed under crds/."""
    return {
        "kaci.dev_models.yaml": model_crd(),
        "kaci.dev_images.yaml": image_crd(),
        "kaci.dev_webservices.yaml": webservice_crd(),
        "kopf.dev_clusterkopfpeerings.yaml": peering_crd(clusterwide=True),
        "kopf.dev_kopfpeerings.yaml": peering_crd(clusterwide=False),
    }


def render(crd: Schema) -> str:
    header = "# Generated by `python -m kaci.crds crds/` from operator/kaci/crds.py: edit there.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=100)


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "crds")
    out.mkdir(parents=True, exist_ok=True)
    for name, crd in all_crds().items():
        (out / name).write_text(render(crd))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
