"""@rawhttp (Azure's new import path): the Flask request's everyday surface."""

from azureml_inference_server_http.api.aml_request import AMLRequest, rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    if request.path != "/score":
        return AMLResponse("wrong path", 500)
    pairs = [(name, value) for name, value in request.headers if name.startswith("X-")]
    out = {
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string.decode(),
        "args": request.args.to_dict(flat=False),
        "n": request.args.get("n", type=int),
        "bad_n": request.args.get("word", default=-1, type=int),
        "header_pairs": pairs,
        "x_one": request.headers.get("X-One"),
        "x_one_lower": request.headers.get("x-one", None),
        "content_type": request.content_type,
        "mimetype": request.mimetype,
        "content_length": request.content_length,
        "is_json": request.is_json,
        "data": request.get_data(as_text=True),
        "remote_addr": request.remote_addr,
        "scheme": request.scheme,
        "is_aml_request": isinstance(request, AMLRequest),
        "user_agent": request.headers.get("User-Agent"),
    }
    if request.is_json:
        out["json"] = request.get_json()
        out["json_prop"] = request.json
    if request.method == "OPTIONS":
        return AMLResponse("", 204, {"X-Options": "seen"})
    return out
