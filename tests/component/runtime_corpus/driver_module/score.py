"""A generated driver module: Azure calls the real script's run() directly, and this init()."""

import real_score as driver_module


def init():
    driver_module.init()


def run(input_data):
    return {"driver": "should not be called"}
