"""score.py importing from AZUREML_SOURCE_DIRECTORY (src/), as Azure's code configurations do."""

import json

from helpers.scaling import scale


def init():
    global factor
    factor = 3


def run(raw_data):
    return scale(json.loads(raw_data)["values"], factor)
