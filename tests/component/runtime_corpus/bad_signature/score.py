"""run(*args) is refused at load time: the server exits with 3."""


def init():
    pass


def run(*args):
    return args
