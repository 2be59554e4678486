"""deploymentConfig's request capture: Azure's collect_model_data, and where it goes."""

from __future__ import annotations

from kaci.crds.schema import Schema


def model_data_properties() -> dict[str, Schema]:
    return {
        "collectModelData": {
            "type": "boolean",
            "description": "Capture every scored request and its answer (Azure's "
            "collect_model_data): JSON lines with Azure's fields, `inputs` and "
            "`predictions` paired by request id, to the Pod's log unless "
            "modelDataCollection names a PVC or an HTTP endpoint. score.py's own "
            "ModelDataCollector writes to the same place.",
        },
        "modelDataCollection": {
            "type": "object",
            "description": "Where captured records go and how many (with collectModelData).",
            "properties": {
                "claimName": {
                    "type": "string",
                    "maxLength": 253,
                    "description": "A PersistentVolumeClaim in the Webservice's namespace, "
                    "mounted at /var/kaci/model-data: records in Azure's partitioning "
                    "(<service>/<designation>/<yyyy>/<mm>/<dd>/).",
                },
                "url": {
                    "type": "string",
                    "maxLength": 2048,
                    "pattern": "^https?://",
                    "description": "An HTTP(S) endpoint that takes batches of records "
                    "(POST, application/x-ndjson).",
                },
                "sampleRate": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 1,
                    "description": "Share of requests captured (default 1: all).",
                },
                "maxRecordBytes": {
                    "type": "integer",
                    "minimum": 256,
                    "maximum": 16777216,
                    "description": "Largest payload kept in a record; longer ones are cut "
                    "and marked truncated (default 65536).",
                },
            },
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.claimName) && has(self.url))",
                    "message": "modelDataCollection: give claimName or url, not both",
                }
            ],
        },
    }
