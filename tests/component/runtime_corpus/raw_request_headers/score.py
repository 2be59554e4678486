"""@rawhttp and request_headers together: run(request, request_headers)."""

from azureml.contrib.services.aml_request import rawhttp


def init():
    pass


@rawhttp
def run(request, request_headers):
    return {
        "method": request.method,
        "same": request.headers.get("X-Thing") == request_headers.get("X-Thing"),
        "thing": request_headers.get("X-Thing"),
        "content_type": request_headers.get("Content-Type"),
    }
