"""@rawhttp with multipart uploads: request.files, form fields, values."""

import hashlib

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    if request.method != "POST":
        return AMLResponse("POST an image", 400)
    files = {}
    for field, storage in request.files.items(multi=True):
        content = storage.read()
        files.setdefault(field, []).append(
            {
                "filename": storage.filename,
                "content_type": storage.content_type,
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            }
        )
    if "image" not in request.files:
        return AMLResponse(
            {"error": "no file named image", "fields": sorted(request.files)}, 422, json_str=True
        )
    return {
        "files": files,
        "form": request.form.to_dict(flat=False),
        "values": sorted(request.values.keys()),
        "mimetype": request.mimetype,
    }
