"""@rawhttp with an urlencoded form: request.form, request.values (query and form)."""

from azureml.contrib.services.aml_request import rawhttp


def init():
    pass


@rawhttp
def run(request):
    return (
        {
            "form": request.form.to_dict(flat=False),
            "values": request.values.to_dict(flat=False),
            "first_color": request.values.get("color"),
            "count": request.form.get("count", type=int),
            "data_after_form": request.get_data(),
        }
        if request.method == "POST"
        else {"args": request.args.to_dict()}
    )
