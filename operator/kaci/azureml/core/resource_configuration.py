"""ResourceConfiguration (Azure's azureml.core.resource_configuration).

Given to Model.register, it was the CPU and memory a no-code deploy would ask for;
kaci takes CPU and memory from the deployment configuration, so Model.register
warns that it is not used. GPUs are refused: kaci images are CPU-only.
"""

from __future__ import annotations

from typing import Any

from kaci.azureml.exceptions import WebserviceException


class ResourceConfiguration:
    def __init__(
        self, cpu: float | None = None, memory_in_gb: float | None = None, gpu: int | None = None
    ) -> None:
        self.cpu = cpu
        self.memory_in_gb = memory_in_gb
        self.gpu = gpu
        self._validate()

    def _validate(self) -> None:
        for name in ("cpu", "memory_in_gb"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise WebserviceException(
                    f"Invalid configuration, {name} must be greater than zero."
                )
        if self.gpu:
            raise WebserviceException("gpu: kaci scoring images are CPU-only")

    def serialize(self) -> dict[str, Any]:
        return {"cpu": self.cpu, "memoryInGB": self.memory_in_gb, "gpu": self.gpu}

    @staticmethod
    def deserialize(payload: dict[str, Any]) -> ResourceConfiguration:
        return ResourceConfiguration(
            payload.get("cpu"), payload.get("memoryInGB"), payload.get("gpu")
        )
