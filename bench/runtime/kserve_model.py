"""The same model behind KServe's Python model server (v1 protocol), the way KServe's
docs write a custom predictor: load() reads the joblib file, predict() takes the
already-parsed {"instances": [...]} body."""

import argparse
from typing import Any

import joblib
import kserve
import numpy as np


class MnistModel(kserve.Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.model: Any = None
        self.load()

    def load(self) -> bool:
        self.model = joblib.load(self.path)
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: Any = None) -> Any:
        data = np.array(payload["instances"])
        return {"predictions": self.model.predict(data).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    model = MnistModel(args.model_name, args.model_path)
    kserve.ModelServer().start([model])
