"""A plain script; what is tested is a server setting (see the test's table)."""


def init():
    pass


def run(raw_data):
    return {"echo": raw_data}
