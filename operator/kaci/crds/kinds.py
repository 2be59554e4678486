"""kaci's three kinds: Model, Image, Webservice (pure)."""

from __future__ import annotations

from kaci.crds.aks import aks_properties, aks_rules, aks_status, scale_subresource
from kaci.crds.modeldata import model_data_properties
from kaci.crds.schema import (
    IMAGE_NAME_RE,
    MODEL_NAME_RE,
    SERVICE_NAME_RE,
    Schema,
    _crd,
    _exactly_one,
    _map,
    _model_refs,
    _name_version_list,
    _status,
    _str,
    image_config_properties,
    model_source_schema,
)


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
                        "description": "CPU cores, e.g. 0.1, 0.5, 1, 2: the request, and "
                        "the limit too unless cpuCoresLimit is set.",
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
                        "description": "Memory in GB, e.g. 0.5, 1, 1.5: the request, and "
                        "the limit too unless memoryGbLimit is set.",
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
                        "description": "Demand a key (Authorization: Bearer <key>).",
                    },
                    "tags": _map("Free key/value tags."),
                    "description": _str("Free text.", maxLength=4096),
                    **aks_properties(),
                    **model_data_properties(),
                },
                "x-kubernetes-validations": aks_rules(),
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
            **aks_status(),
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
    return _crd(
        "Webservice", "webservices", "kws", spec, status, columns, rules, scale_subresource()
    )
