"""GET /swagger.json: the user's swagger file, else one built from the inference-schema
decorators, else a generic one — versions 2 (default), 3 and 3.1, as Azure serves them.

Built once after init(); the server serves the pre-encoded bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

# Version asked for (`?version=`) -> the builder's version.
VERSION_ALIASES = {"2": "2", "2.0": "2", "3": "3", "3.0": "3", "3.1": "3.1"}
_SCHEMA_VERSION = {"2": "2.0", "3": "3.0", "3.1": "3.1"}
_GENERIC_SCHEMA: dict[str, Any] = {"type": "object", "example": {}}

# azmlinfsrv's description strings, word for word (clients and API catalogs show them).
HEALTH_DESCRIPTION = "Simple health check endpoint to ensure the service is up at any given point."
HEALTHY_DESCRIPTION = (
    "If service is up and running, this response will be returned with the content 'Healthy'"
)
INPUT_DESCRIPTION = "The input payload for executing the real-time machine learning service."
OUTPUT_DESCRIPTION = (
    "The service processed the input correctly and provided a result prediction, if applicable."
)


class SwaggerError(Exception):
    pass


def _error_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"message": {"type": "string"}}}


def _bearer() -> dict[str, Any]:
    return {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "For example: Bearer abc123",
    }


def _info(service_name: str, service_version: str) -> dict[str, Any]:
    return {
        "title": service_name,
        "description": f"API specification for the Azure Machine Learning service {service_name}",
        "version": service_version,
    }


def swagger2(
    prefix: str, name: str, version: str, input_schema: Any, output_schema: Any
) -> dict[str, Any]:
    error = {
        "description": "The service failed to execute due to an error.",
        "schema": {"$ref": "#/definitions/ErrorResponse"},
    }
    return {
        "swagger": "2.0",
        "info": _info(name, version),
        "schemes": ["https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": {"Bearer": _bearer()},
        "paths": {
            f"{prefix}/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": HEALTH_DESCRIPTION,
                    "responses": {
                        "200": {
                            "description": HEALTHY_DESCRIPTION,
                            "schema": {"type": "string"},
                            "examples": {"application/json": "Healthy"},
                        },
                        "default": error,
                    },
                }
            },
            f"{prefix}/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": "Run web service's model and get the prediction output",
                    "security": [{"Bearer": []}],
                    "parameters": [
                        {
                            "name": "serviceInputPayload",
                            "in": "body",
                            "description": INPUT_DESCRIPTION,
                            "schema": {"$ref": "#/definitions/ServiceInput"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": OUTPUT_DESCRIPTION,
                            "schema": {"$ref": "#/definitions/ServiceOutput"},
                        },
                        "default": error,
                    },
                }
            },
            f"{prefix}/swagger.json": {
                "get": {
                    "operationId": "GetSwaggerSpec",
                    "description": "Get the Swagger specification.",
                    "parameters": [
                        {
                            "name": "version",
                            "in": "query",
                            "required": False,
                            "type": "integer",
                            "enum": [2, 3],
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The Swagger specification.",
                            "schema": {"type": "string"},
                        },
                        "default": error,
                    },
                }
            },
        },
        "definitions": {
            "ServiceInput": input_schema,
            "ServiceOutput": output_schema,
            "ErrorResponse": _error_schema(),
        },
    }


def swagger3(
    prefix: str, name: str, version: str, input_schema: Any, output_schema: Any, openapi: str
) -> dict[str, Any]:
    def content(ref: str, media: str = "application/json") -> dict[str, Any]:
        return {media: {"schema": {"$ref": f"#/components/schemas/{ref}"}}}

    error = {
        "description": "The service failed to execute due to an error.",
        "content": content("ErrorResponse"),
    }
    return {
        "openapi": openapi,
        "info": _info(name, version),
        "security": [{"Bearer": []}],
        "paths": {
            f"{prefix}/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": HEALTH_DESCRIPTION,
                    "responses": {
                        "200": {
                            "description": HEALTHY_DESCRIPTION,
                            "content": {
                                "text/plain": {"schema": {"type": "string", "example": "Healthy"}}
                            },
                        },
                        "default": error,
                    },
                }
            },
            f"{prefix}/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": "Run web service's model and get the prediction output",
                    "security": [{"Bearer": []}],
                    "requestBody": {
                        "description": INPUT_DESCRIPTION,
                        "content": content("ServiceInput"),
                    },
                    "responses": {
                        "200": {
                            "description": OUTPUT_DESCRIPTION,
                            "content": content("ServiceOutput"),
                        },
                        "default": error,
                    },
                }
            },
            f"{prefix}/swagger.json": {
                "get": {
                    "operationId": "GetSwaggerSpec",
                    "description": "Get the Swagger specification.",
                    "parameters": [
                        {
                            "name": "version",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "enum": [2, 3]},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The Swagger specification.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "default": error,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "ServiceInput": input_schema,
                "ServiceOutput": output_schema,
                "ErrorResponse": _error_schema(),
            },
            "securitySchemes": {"Bearer": _bearer()},
        },
    }


def _user_file(folders: list[Path], names: list[str]) -> Any:
    """The user's swagger document, if any. Any JSON value is served as it is, but as in
    azmlinfsrv an empty one ({}, "", null) counts as no file."""
    for folder in folders:
        for name in names:
            path = folder / name
            if path.is_file():
                data = json.loads(path.read_text(encoding="utf-8"))
                if data:
                    return data
    return None


def _schemas(run: Callable[..., Any], version: str) -> tuple[Any, Any] | None:
    """(input, output) schemas from the decorators; None when run() does not support `version`."""
    try:
        from inference_schema import schema_util
    except ImportError:
        return _GENERIC_SCHEMA, _GENERIC_SCHEMA
    if _SCHEMA_VERSION[version] not in schema_util.get_supported_versions(run):
        return None
    if not schema_util.is_schema_decorated(run):
        return _GENERIC_SCHEMA, _GENERIC_SCHEMA
    return schema_util.get_input_schema(run), schema_util.get_output_schema(run)


class Swagger:
    """The swagger documents for one score.py, pre-encoded per version."""

    def __init__(self, docs: dict[str, bytes]) -> None:
        self.docs = docs

    @classmethod
    def build(
        cls,
        run: Callable[..., Any],
        folders: list[Path],
        name: str = "ML service",
        service_version: str = "1.0",
        raw_prefix: str = "",
    ) -> Swagger:
        prefix = f"/{raw_prefix.strip('/')}" if raw_prefix else ""
        docs: dict[str, bytes] = {}
        for version in ("2", "3", "3.1"):
            files = (
                ["swagger.json", "swagger2.json"] if version == "2" else [f"swagger{version}.json"]
            )
            doc = _user_file(folders, files)
            if doc is None:
                schemas = _schemas(run, version)
                if schemas is None:
                    continue
                if version == "2":
                    doc = swagger2(prefix, name, service_version, *schemas)
                else:
                    openapi = "3.1.0" if version == "3.1" else "3.0.3"
                    doc = swagger3(prefix, name, service_version, *schemas, openapi=openapi)
            docs[version] = orjson.dumps(doc)
        return cls(docs)

    def get(self, requested: str | None) -> bytes:
        asked = "2" if requested is None else requested
        supported = ", ".join(sorted(self.docs))
        version = VERSION_ALIASES.get(asked)
        if version is None:
            raise SwaggerError(
                f"Swagger version [{asked}] is not valid. Supported versions: [{supported}]."
            )
        doc = self.docs.get(version)
        if doc is None:
            raise SwaggerError(
                f"Swagger version [{asked}] is not supported for the scoring script. "
                f"Supported swagger versions: [{supported}]."
            )
        return doc
