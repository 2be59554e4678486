"""kaci's stand-in for `azureml.core.model.Model`: `Model.get_model_path` only."""

from __future__ import annotations

from kaci_runtime.modelpath import get_model_path as _get_model_path


class Model:
    @staticmethod
    def get_model_path(
        model_name: str, version: int | None = None, _workspace: object = None
    ) -> str:
        if _workspace is not None:
            raise NotImplementedError(
                "kaci: Model.get_model_path(_workspace=...) downloads from an Azure workspace; "
                "inside kaci the model files are already in the image"
            )
        return _get_model_path(model_name, version)
