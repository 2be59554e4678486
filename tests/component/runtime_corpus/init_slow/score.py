"""A slow init(): requests sent meanwhile wait and are answered once it is done."""

import time


def init():
    global loaded
    time.sleep(2.0)
    loaded = "model"


def run(raw_data):
    return {"loaded": loaded, "data": raw_data}
