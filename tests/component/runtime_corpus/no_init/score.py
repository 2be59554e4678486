"""No init(): the server exits with 3."""


def run(raw_data):
    return raw_data
