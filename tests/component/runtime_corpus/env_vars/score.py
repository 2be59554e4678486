"""What the server leaves in the environment for score.py (azmlinfsrv sets several)."""

import os

NAMES = (
    "AML_APP_INSIGHTS_ENABLED",
    "AML_APP_INSIGHTS_KEY",
    "AZUREML_MODEL_DIR",
    "WORKER_COUNT",
    "AML_CORS_ORIGINS",
    "AZUREML_CONFIG_FILE",
)


def init():
    global seen_at_init
    seen_at_init = {name: os.environ.get(name, "__NONE__") for name in NAMES}


def run(raw_data):
    return {
        "init": seen_at_init,
        "entry_script_is_this_file": os.environ.get("AZUREML_ENTRY_SCRIPT")
        == os.path.realpath(__file__),
        "app_root_is_cwd": os.environ.get("AML_APP_ROOT") == os.getcwd(),  # noqa: PTH109
        "server_version_set": bool(os.environ.get("HTTP_X_MS_SERVER_VERSION")),
        "server_port_set": os.environ.get("SERVER_PORT", "").isdigit(),
    }
