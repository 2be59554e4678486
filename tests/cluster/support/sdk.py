"""The SDK walkthrough's working folder (score.py, myenv.yml, a model, config.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from kaci.azureml.core import Workspace

from support.kaci_operator import ROOT, train

KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
CONTEXT = "kaci-local"
MNIST = ROOT / "examples" / "mnist"


def mnist_workdir(folder: Path, ws: Workspace) -> Path:
    """score.py, myenv.yml, a freshly trained model and Azure's .azureml/config.json."""
    train(folder)
    for name in ("score.py", "myenv.yml"):
        shutil.copy(MNIST / name, folder / name)
    (folder / ".azureml").mkdir(exist_ok=True)
    (folder / ".azureml" / "config.json").write_text(
        json.dumps(
            {
                "context": CONTEXT,
                "namespace": ws.namespace,
                "kubeconfig": str(KUBECONFIG),
                "operator": ws.operator,
            }
        )
    )
    return folder
