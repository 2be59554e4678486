"""A plain script whose swagger comes from files in the app root."""


def init():
    pass


def run(raw_data):
    return raw_data
