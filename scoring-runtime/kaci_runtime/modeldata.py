"""`from azureml.monitoring import ModelDataCollector` for score.py files that collect model data.

Azure's collector (azureml-monitoring) sends CSV rows to blob storage through a
native library, and only on AKS. kaci's writes each collected row as one JSON
line with Azure's record fields (`$aml_dc_correlation_id`, `$aml_dc_scoring_timestamp`,
`$aml_dc_boundary`, `$aml_workspace`, `$aml_service_name`, `$aml_model_name`,
`$aml_model_version`, `$aml_request_id`), to stdout (the Pod's log) or, when
`KACI_MODEL_DATA_DIR` names a folder (a mounted volume), to
`<folder>/<workspace>/<service>/<model>/<version>/<designation>/<yyyy>/<mm>/<dd>/<name>.jsonl`,
the partitioning Azure uses for its blobs. `KACI_MODEL_DATA=off` collects nothing.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from kaci_runtime import capture

CORRELATION_ID = "$aml_dc_correlation_id"
SCORING_TIMESTAMP = "$aml_dc_scoring_timestamp"
BOUNDARY = "$aml_dc_boundary"
WORKSPACE = "$aml_workspace"
SERVICE_NAME = "$aml_service_name"
MODEL_NAME = "$aml_model_name"
MODEL_VERSION = "$aml_model_version"
REQUEST_ID = "$aml_request_id"
# Azure's order of the correlation columns, appended after the features.
CORRELATION_FIELDS = (
    CORRELATION_ID,
    SCORING_TIMESTAMP,
    BOUNDARY,
    WORKSPACE,
    SERVICE_NAME,
    MODEL_NAME,
    MODEL_VERSION,
    REQUEST_ID,
)
DESIGNATIONS = ("inputs", "predictions", "labels", "signals", "general")
# Azure's collector never learns the request id inside azmlinfsrv: it records zeros.
NO_REQUEST_ID = "00000000-0000-0000-0000-000000000000"
_write_lock = threading.Lock()


def _rows(data: Any) -> tuple[list[list[Any]], list[str] | None]:
    """The rows of a list, numpy array or pandas DataFrame, and the DataFrame's column names."""
    columns = getattr(data, "columns", None)
    if columns is not None and hasattr(data, "itertuples"):
        names = [str(c) for c in columns]
        return [list(row) for row in data.itertuples(index=False, name=None)], names
    if hasattr(data, "tolist") and hasattr(data, "ndim"):
        values = data.tolist()
        return ([values] if data.ndim == 1 else values), None
    if isinstance(data, list):
        # A flat list is one row; a list of lists, many.
        if data and all(isinstance(r, list | tuple) for r in data):
            return [list(r) for r in data], None
        return [data], None
    raise TypeError(
        "collect failed: input data must be a list, a numpy array or a pandas DataFrame"
    )


class ModelDataCollector:
    """Azure's model data collector, writing JSON lines instead of blob CSV files."""

    def __init__(
        self,
        model_name: str,
        designation: str = "default",
        feature_names: list[str] | None = None,
        workspace: str = "default/default/default",
        webservice_name: str = "default",
        model_version: str = "default",
        collection_name: str = "default",
    ) -> None:
        self.enabled = os.environ.get("KACI_MODEL_DATA", "").strip().lower() not in (
            "0",
            "off",
            "false",
            "no",
        )
        self.designation = "general" if designation == "default" else designation
        if self.designation not in DESIGNATIONS:
            print(
                "Incorrect designation value. Supported values: 'default', "
                + ", ".join(repr(d) for d in DESIGNATIONS),
                file=sys.stderr,
            )
            self.enabled = False
        self.model_name = model_name
        self.model_version = model_version
        self.workspace = workspace.lower()
        self.service_name = (
            os.environ.get("SERVICE_NAME") or webservice_name
            if webservice_name == "default"
            else webservice_name
        )
        self.feature_names = list(feature_names) if feature_names is not None else None
        # Azure names the file after the designation, except for signals and general data.
        self.file_name = (
            collection_name if self.designation in ("signals", "general") else self.designation
        )
        hourly = os.environ.get("AML_MODEL_DC_BOUNDARY") == "hour"
        self.boundary = 60 if hourly else 60 * 24
        folder = os.environ.get("KACI_MODEL_DATA_DIR", "").strip()
        self.folder = Path(folder) if folder else None
        # Whether rows end with the correlation values (inputs, or after add_correlations).
        self._correlated = False

    def correlations(self, user_correlation_id: str = "") -> dict[str, Any]:
        generated = str(uuid.uuid4())
        return {
            SCORING_TIMESTAMP: datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat(),
            REQUEST_ID: NO_REQUEST_ID,
            CORRELATION_ID: f"{user_correlation_id}-{generated}"
            if user_correlation_id
            else generated,
            BOUNDARY: self.boundary,
            WORKSPACE: self.workspace,
            SERVICE_NAME: self.service_name,
            MODEL_NAME: self.model_name,
            MODEL_VERSION: self.model_version,
        }

    def add_correlations(self, input_data: Any, correlations: dict[str, Any] | None) -> Any:
        """The data with the correlation values appended to each row (Azure's helper)."""
        if correlations is None:
            return input_data
        self._correlated = True
        extra = [correlations[f] for f in CORRELATION_FIELDS]
        if hasattr(input_data, "itertuples"):  # a DataFrame: one column per field
            frame = input_data.copy(deep=False)
            for name in CORRELATION_FIELDS:
                frame.insert(len(frame.columns), name, correlations[name])
            return frame
        rows, _ = _rows(input_data)
        if isinstance(input_data, list) and rows == [input_data]:
            return [*input_data, *extra]
        return [[*row, *extra] for row in rows]

    def collect(self, input_data: Any, user_correlation_id: str = "") -> dict[str, Any] | None:
        """Write the rows; for `inputs`, returns the correlation fields to pass on to
        `add_correlations` of the predictions' collector, as Azure's does."""
        correlations = None
        if self.designation == "inputs":
            correlations = self.correlations(user_correlation_id)
            input_data = self.add_correlations(input_data, correlations)
        if not self.enabled:
            return correlations
        rows, columns = _rows(input_data)
        self._write([self._record(row, columns) for row in rows])
        return correlations

    def _record(self, row: list[Any], columns: list[str] | None) -> str:
        record: dict[str, Any] = {"$aml_dc_designation": self.designation}
        if columns is not None:  # a DataFrame's own names, the correlation columns included
            record.update(zip(columns, row, strict=False))
        else:
            features, correlation = row, []
            if self._correlated and len(row) >= len(CORRELATION_FIELDS):
                cut = len(row) - len(CORRELATION_FIELDS)
                features, correlation = row[:cut], row[cut:]
            names = self.feature_names or []
            record.update(zip(names, features, strict=False))
            # Values without a name (Azure writes them as CSV cells without a header).
            if len(features) > len(names):
                record["data"] = features[len(names) :]
            if correlation:  # rows without correlation values (signals, general data)
                record.update(zip(CORRELATION_FIELDS, correlation, strict=True))
        record.setdefault(SERVICE_NAME, self.service_name)
        record.setdefault(MODEL_NAME, self.model_name)
        record.setdefault(MODEL_VERSION, self.model_version)
        return json.dumps(record, default=str)

    def _write(self, lines: list[str]) -> None:
        shared = capture.active()
        if shared is not None:
            # The server captures requests (collectModelData): one sink for both.
            for line in lines:
                shared.put(self.designation, line.encode())
            return
        text = "".join(f"{line}\n" for line in lines)
        if self.folder is None:
            with _write_lock:
                sys.stdout.write(text)
                sys.stdout.flush()
            return
        today = datetime.datetime.now(datetime.UTC)
        path = self.folder.joinpath(
            *self.workspace.split("/"),
            self.service_name,
            self.model_name,
            str(self.model_version),
            self.designation,
            f"{today:%Y}",
            f"{today:%m}",
            f"{today:%d}",
            f"{self.file_name}.jsonl",
        )
        with _write_lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write(text)
