"""A script whose entry point, timeout and service name come from a config file."""

import os
import time


def init():
    pass


def run(raw_data):
    if raw_data == "slow":
        time.sleep(2)
    return {"echo": raw_data, "service": os.environ.get("SERVICE_NAME")}
