"""AMLResponse: headers given and set afterwards, mimetype, comma lists, JSON, status codes."""

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    case = request.args.get("case", "")
    if case == "assign":
        resp = AMLResponse("assigned", 200)
        resp.headers["X-Assigned"] = "yes"
        resp.headers.add("X-Added", "one")
        resp.headers.add("X-Added", "two")
        return resp
    if case == "mimetype":
        resp = AMLResponse("plain text now", 200)
        resp.mimetype = "text/plain"
        return resp
    if case == "content_type_given":
        return AMLResponse(b"\x89PNG....", 200, {"Content-Type": "image/png"})
    if case == "content_type_lower":
        return AMLResponse("two types", 200, {"content-type": "text/csv"})
    if case == "comma":
        return AMLResponse(
            "listed", 200, {"X-List": "a, b,c", "Cache-Control": "no-cache, no-store"}
        )
    if case == "json":
        return AMLResponse({"k": [1, 2]}, 201, {"X-Json": "1"}, json_str=True)
    if case == "none":
        return AMLResponse(None, 202)
    if case == "not_found":
        return AMLResponse("nothing here", 404)
    if case == "server_error":
        return AMLResponse("it broke", 503)
    if case == "failed_flag":
        return AMLResponse("flagged", 200, run_function_failed=True)
    if case == "status_set":
        resp = AMLResponse("teapot", 200)
        resp.status_code = 418
        return resp
    if case == "data_set":
        resp = AMLResponse("old", 200)
        resp.set_data(b"new body")
        return resp
    if case == "flag_header_given":
        return AMLResponse("given", 200, {"x-ms-run-function-failed": "True"})
    if case == "flag_header_given_500":
        return AMLResponse("given", 500, {"x-ms-run-function-failed": "maybe"})
    if case == "ids":
        resp = AMLResponse("", 200)
        resp.headers["x-request-id"] = "cannot-be-overwritten"
        resp.headers["x-ms-request-id"] = "nor-this"
        resp.headers["x-ms-client-request-id"] = "kept-unless-the-client-sent-one"
        resp.headers["TraceId"] = "from-run"
        return resp
    if case == "azure_test_headers":
        headers = {"a": "A", "b": "A, B, C", "content-type": "A", "x-ms-run-function-failed": "Z"}
        return AMLResponse(None, 555, headers, run_function_failed=True)
    if case == "cookie":
        resp = AMLResponse("cookie", 200)
        resp.set_cookie("session", "abc")
        return resp
    return {"case": case}
