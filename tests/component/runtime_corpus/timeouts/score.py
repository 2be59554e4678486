"""run() against SCORING_TIMEOUT_MS."""

import json
import time


def init():
    pass


def run(raw_data):
    seconds = json.loads(raw_data)["sleep"]
    if json.loads(raw_data).get("swallow"):
        try:
            time.sleep(seconds)
        except Exception:
            return "caught the timeout"
        return "slept"
    time.sleep(seconds)
    return {"slept": seconds}
