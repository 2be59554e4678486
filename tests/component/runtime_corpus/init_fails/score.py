"""init() raising: the server must not serve; it exits with code 3."""


def init():
    raise FileNotFoundError("/nonexistent/model.pkl")


def run(raw_data):
    return raw_data
