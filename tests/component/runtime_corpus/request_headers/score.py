"""run(data, request_headers): the headers as Azure passes them (a dict, Title-Case names)."""


def init():
    pass


def run(data, request_headers):
    keep = (
        "Content-Type",
        "X-Custom-Thing",
        "X-Repeated",
        "Content-Length",
        "Authorization",
        "X-Under",
        "X_Under",
    )
    return {
        "data": data,
        "headers": {k: v for k, v in request_headers.items() if k in keep},
        "names_are_str": all(isinstance(k, str) for k in request_headers),
    }
