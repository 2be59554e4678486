"""The operator-side pieces the SDK's 2019+ surface needs: a source directory at the
app root, environment variables in the scoring image, and an empty models list."""

from __future__ import annotations

from kaci import crds
from kaci.reconcile.image import source_dir_of
from kaci.render import image as render
from kaci.render import names
from kaci.settings import Settings

BASE = render.ScoringImageInputs(
    base_image="python:3.11-slim",
    requirements=["numpy"],
    score_py=b"def init(): pass\ndef run(d): return d\n",
    models=[],
    runtime_files={},
)


def test_source_directory_is_copied_to_the_app_root_before_score_py() -> None:
    inp = render.ScoringImageInputs(
        **{**BASE.__dict__, "source_dir": ("reg:5000/kaci/ns/source/src-1@sha256:ab", "/model")}
    )
    lines = render.scoring_dockerfile(inp).splitlines()
    copy = "COPY --from=reg:5000/kaci/ns/source/src-1@sha256:ab /model/ /var/azureml-app/"
    assert copy in lines
    assert lines.index(copy) < lines.index("COPY score.py /var/azureml-app/score.py")
    # a different folder is a different build (the tag is a hash of the context)
    other = render.ScoringImageInputs(**{**inp.__dict__, "source_dir": ("reg/x@sha256:cd", "/")})
    assert render.content_hash(render.scoring_context(inp), None) != render.content_hash(
        render.scoring_context(other), None
    )
    assert "COPY --from=reg/x@sha256:cd / /var/azureml-app/" in render.scoring_dockerfile(other)


def test_no_source_directory_no_copy() -> None:
    assert "COPY --from" not in render.scoring_dockerfile(BASE)


def test_environment_variables_are_literal_and_before_kacis_own() -> None:
    inp = render.ScoringImageInputs(
        **{**BASE.__dict__, "env": {"GREETING": 'hi "$USER" \\o/', "A": "1"}}
    )
    lines = render.scoring_dockerfile(inp).splitlines()
    assert 'ENV A="1"' in lines
    assert 'ENV GREETING="hi \\"\\$USER\\" \\\\o/"' in lines
    kaci_env = next(i for i, ln in enumerate(lines) if ln.startswith("ENV AZUREML_MODEL_DIR="))
    assert lines.index('ENV A="1"') < kaci_env


def test_source_dir_of_spec() -> None:
    same = Settings(registry="127.0.0.1:5000")
    assert source_dir_of({}, same) is None
    spec = {"sourceDirectory": {"image": {"reference": "127.0.0.1:5000/kaci/ns/source/s@sha256:1"}}}
    assert source_dir_of(spec, same) == ("127.0.0.1:5000/kaci/ns/source/s@sha256:1", "/")
    other = {"sourceDirectory": {"image": {"reference": "r", "path": "/model"}}}
    assert source_dir_of(other, same) == ("r", "/model")
    # The SDK named kaci's registry as the host sees it; an in-cluster builder reaches
    # the same registry by the node's address.
    split = Settings(registry="10.88.0.1:5000", registry_pull="127.0.0.1:5000")
    assert source_dir_of(spec, split) == ("10.88.0.1:5000/kaci/ns/source/s@sha256:1", "/")
    assert source_dir_of(other, split) == ("r", "/model")


def test_the_builder_sees_kacis_registry_by_its_own_address() -> None:
    see = names.as_the_builder_sees
    assert see("127.0.0.1:5000/kaci/base:1", "10.88.0.1:5000", "127.0.0.1:5000") == (
        "10.88.0.1:5000/kaci/base:1"
    )
    assert see("127.0.0.1:50000/x:1", "10.88.0.1:5000", "127.0.0.1:5000") == "127.0.0.1:50000/x:1"
    assert see("docker.io/python:3.11", "10.88.0.1:5000", "127.0.0.1:5000") == (
        "docker.io/python:3.11"
    )
    assert see("reg.example/ml/base:1", "push.internal/ml", "reg.example/ml") == (
        "push.internal/ml/base:1"
    )
    assert see("127.0.0.1:5000/a:1", "127.0.0.1:5000", "127.0.0.1:5000") == "127.0.0.1:5000/a:1"


def test_crds_allow_empty_models_and_have_the_new_fields() -> None:
    image = crds.image_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    ws = crds.webservice_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    assert image["spec"]["properties"]["models"]["minItems"] == 0
    assert ws["spec"]["properties"]["models"]["minItems"] == 0
    for props in (
        image["spec"]["properties"],
        ws["spec"]["properties"]["imageConfig"]["properties"],
    ):
        assert props["sourceDirectory"]["required"] == ["image"]
        rule = props["environmentVariables"]["x-kubernetes-validations"][0]["rule"]
        assert "matches" in rule
