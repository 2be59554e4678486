"""`kaci`: the Azure ML deployment workflow from a shell, on top of kaci.azureml."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from kaci.azureml.core.image import ContainerImage, Image
from kaci.azureml.core.image.container import ContainerImageConfig
from kaci.azureml.core.model import Model
from kaci.azureml.core.webservice import AciWebservice, Webservice
from kaci.azureml.core.workspace import Workspace, find_config_file, parse_config
from kaci.azureml.exceptions import ResourceNotFoundException, UserErrorException
from kaci.cli import exitcodes, output

Handler = Callable[[argparse.Namespace, Workspace, TextIO], int]


class UsageError(Exception):
    """argparse's errors, raised instead of printed so main() decides the exit."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse prints usage and exits 2 by default
        raise UsageError(f"{self.prog}: {message}")


def workspace_from_args(args: argparse.Namespace) -> Workspace:
    """Flags override the config file; with neither, the kubeconfig's current context."""
    base: dict[str, Any] = {}
    try:
        found: Path | None = find_config_file(args.config, None)
    except UserErrorException:
        if args.config:
            raise
        found = None
    if found is not None:
        import json

        try:
            cfg = parse_config(json.loads(found.read_text()))
        except ValueError as exc:
            raise UserErrorException(f"cannot read workspace config {found}: {exc}") from None
        base = {
            "context": cfg.context,
            "namespace": cfg.namespace,
            "kubeconfig": cfg.kubeconfig,
            "registry": cfg.registry,
            "registry_pull": cfg.registry_pull,
            "registry_insecure": cfg.registry_insecure,
            "operator": cfg.operator,
        }
    for key in ("context", "namespace", "kubeconfig", "registry"):
        if getattr(args, key, None):
            base[key] = getattr(args, key)
    return Workspace(**base)


# -- model -------------------------------------------------------------------------


def model_register(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    model = Model.register(
        ws,
        model_path=args.path,
        model_name=args.name,
        tags=output.parse_pairs(args.tag, "--tag"),
        properties=output.parse_pairs(args.property, "--property"),
        description=args.description,
        model_framework=args.framework,
        timeout_sec=args.timeout,
    )
    _emit(out, model.serialize(), output.MODEL_COLUMNS, args.output)
    return exitcodes.OK


def model_list(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    models = Model.list(ws, name=args.name, latest=args.latest, tags=_tag_filter(args.tag))
    _emit(out, [m.serialize() for m in models], output.MODEL_COLUMNS, args.output)
    return exitcodes.OK


def model_show(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    name, version = output.parse_ref(args.name)
    model = Model(ws, name=name, version=args.version or version)
    _emit(out, model.serialize(), output.MODEL_COLUMNS, args.output, single=True)
    return exitcodes.OK


def model_download(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    name, version = output.parse_ref(args.name)
    model = Model(ws, name=name, version=args.version or version)
    path = model.download(target_dir=args.target_dir, exist_ok=args.overwrite)
    print(path, file=out)
    return exitcodes.OK


def model_delete(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    try:
        Model(ws, name=args.name).delete()
    except ResourceNotFoundException:
        if not args.ignore_not_found:
            raise
    print(f"model {args.name} deleted", file=out)
    return exitcodes.OK


# -- image ----------------------------------------------------------------------------


def _image_config(args: argparse.Namespace) -> ContainerImageConfig:
    if not args.script:
        raise UserErrorException("--script (the score.py) is required")
    return ContainerImage.image_configuration(
        execution_script=args.script,
        runtime=args.runtime,
        conda_file=args.conda_file,
        docker_file=args.docker_file,
        base_image=args.base_image,
        description=getattr(args, "image_description", None),
    )


def _models(ws: Workspace, refs: list[str]) -> list[Model]:
    return [Model(ws, name=n, version=v) for n, v in map(output.parse_ref, refs)]


def image_create(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    config = _image_config(args)
    config.tags = output.parse_pairs(args.tag, "--tag")
    config.description = args.description
    image = ContainerImage.create(ws, args.name, _models(ws, args.model), config)
    if not args.no_wait:
        image.wait_for_creation(show_output=not args.quiet, timeout_sec=args.timeout)
    _emit(out, image.serialize(), output.IMAGE_COLUMNS, args.output, single=True)
    return exitcodes.OK


def image_list(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    images = Image.list(ws, model_name=args.model_name, tags=_tag_filter(args.tag))
    _emit(out, [i.serialize() for i in images], output.IMAGE_COLUMNS, args.output)
    return exitcodes.OK


def image_show(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    _emit(out, Image(ws, name=args.name).serialize(), output.IMAGE_COLUMNS, args.output, True)
    return exitcodes.OK


def image_logs(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    print(Image(ws, name=args.name).image_build_log, file=out)
    return exitcodes.OK


def image_delete(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    try:
        Image(ws, name=args.name).delete()
    except ResourceNotFoundException:
        if not args.ignore_not_found:
            raise
    print(f"image {args.name} deleted", file=out)
    return exitcodes.OK


# -- webservice -------------------------------------------------------------------------


def webservice_deploy(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    deploy_config = AciWebservice.deploy_configuration(
        cpu_cores=args.cpu_cores,
        memory_gb=args.memory_gb,
        tags=output.parse_pairs(args.tag, "--tag"),
        description=args.description,
        auth_enabled=args.auth,
    )
    sources = [bool(args.model_file), bool(args.model), bool(args.image)]
    if sum(sources) != 1:
        raise UserErrorException("give exactly one of --model-file, --model or --image")
    service: Webservice
    if args.image:
        if args.script:
            raise UserErrorException("--script is not used with --image: the image is built")
        name, version = output.parse_ref(args.image)
        service = Webservice.deploy_from_image(
            ws,
            args.name,
            Image(ws, name=name, version=version),
            deploy_config,
            overwrite=args.overwrite,
        )
    elif args.model:
        service = Webservice.deploy_from_model(
            ws,
            args.name,
            _models(ws, args.model),
            _image_config(args),
            deploy_config,
            overwrite=args.overwrite,
        )
    else:
        service = Webservice.deploy(
            ws,
            args.name,
            args.model_file,
            _image_config(args),
            deploy_config,
            overwrite=args.overwrite,
        )
    if not args.no_wait:
        service.wait_for_deployment(show_output=not args.quiet, timeout_sec=args.timeout)
    _emit(out, service.serialize(), output.WEBSERVICE_COLUMNS, args.output, single=True)
    return exitcodes.OK


def webservice_list(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    services = Webservice.list(ws, model_name=args.model_name, tags=_tag_filter(args.tag))
    _emit(out, [s.serialize() for s in services], output.WEBSERVICE_COLUMNS, args.output)
    return exitcodes.OK


def webservice_show(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    svc = Webservice(ws, args.name)
    _emit(out, svc.serialize(), output.WEBSERVICE_COLUMNS, args.output, single=True)
    return exitcodes.OK


def webservice_run(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    if args.data is not None:
        body: bytes = args.data.encode()
    elif args.file == "-":
        body = sys.stdin.buffer.read()
    elif args.file:
        body = Path(args.file).read_bytes()
    else:
        raise UserErrorException("give the input with --data JSON or --file PATH (- for stdin)")
    svc = Webservice(ws, args.name)
    assert isinstance(svc, AciWebservice)
    result = svc.run(body)
    import json

    print(json.dumps(result) if not isinstance(result, str) else result, file=out)
    return exitcodes.OK


def webservice_logs(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    print(Webservice(ws, args.name).get_logs(num_lines=args.tail, init=args.previous), file=out)
    return exitcodes.OK


def webservice_keys(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    primary, secondary = Webservice(ws, args.name).get_keys()
    data = {"primaryKey": primary, "secondaryKey": secondary}
    _emit(out, data, [("PRIMARY", "primaryKey"), ("SECONDARY", "secondaryKey")], args.output, True)
    return exitcodes.OK


def webservice_get_token(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    """A token for a token-auth service (Azure's get_token): minted from its keys Secret
    with the caller's own Kubernetes credentials."""
    token, refresh_by = Webservice(ws, args.name).get_token()
    data = {"token": token, "refreshBy": refresh_by.astimezone().isoformat(timespec="seconds")}
    _emit(out, data, [("TOKEN", "token"), ("REFRESH BY", "refreshBy")], args.output, True)
    return exitcodes.OK


def webservice_regen_key(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    Webservice(ws, args.name).regen_key(args.key, set_key=args.set_key)
    print(f"{args.key.capitalize()} key of {args.name} regenerated", file=out)
    return exitcodes.OK


def webservice_delete(args: argparse.Namespace, ws: Workspace, out: TextIO) -> int:
    try:
        Webservice(ws, args.name).delete()
    except ResourceNotFoundException:
        if not args.ignore_not_found:
            raise
    print(f"webservice {args.name} deleted", file=out)
    return exitcodes.OK


# -- helpers and parser -----------------------------------------------------------------


def _tag_filter(tags: list[str] | None) -> list[Any] | None:
    if not tags:
        return None
    return [list(t.split("=", 1)) if "=" in t else t for t in tags]


def _emit(out: TextIO, data: Any, columns: output.Columns, fmt: str, single: bool = False) -> None:
    print(output.render(data, columns, fmt), file=out)


def _add_wait(p: argparse.ArgumentParser, default_timeout: float) -> None:
    p.add_argument("--no-wait", action="store_true", help="return without waiting")
    p.add_argument(
        "--timeout",
        type=float,
        default=default_timeout,
        help=f"seconds to wait before exit code 4 (default {default_timeout:g})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output while waiting")


def _add_image_config(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--script", required=required, help="the score.py (init() and run())")
    p.add_argument("--runtime", default="python", help="only python")
    p.add_argument("--conda-file", help="Azure's myenv.yml")
    p.add_argument("--docker-file", help="extra Dockerfile steps")
    p.add_argument("--base-image", help="base image (default: the operator's)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="kaci",
        description="Azure ML's model deployment workflow on Kubernetes (models, images, "
        "webservices). Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 timeout, "
        "5 cluster unreachable.",
    )
    parser.add_argument("--context", help="kubeconfig context (default: config.json, then current)")
    parser.add_argument("-n", "--namespace", help="namespace (the 'workspace')")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--config", help="workspace config.json (default: searched like Azure)")
    parser.add_argument("--registry", help="registry for large model uploads")
    parser.add_argument("-o", "--output", choices=output.FORMATS, default="table")
    kinds = parser.add_subparsers(dest="kind", required=True, parser_class=_Parser)

    def cmd(sub: Any, name: str, fn: Handler, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_text)
        p.set_defaults(func=fn)
        return p

    # model
    m = kinds.add_parser("model", help="registered models").add_subparsers(
        dest="verb", required=True, parser_class=_Parser
    )
    p = cmd(m, "register", model_register, "register a file or folder as a model (new version)")
    p.add_argument("--name", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--property", action="append", metavar="KEY=VALUE")
    p.add_argument("--description")
    p.add_argument("--framework")
    p.add_argument("--timeout", type=float, default=600.0)
    p = cmd(m, "list", model_list, "list models (every version unless --latest)")
    p.add_argument("--name")
    p.add_argument("--latest", action="store_true")
    p.add_argument("--tag", action="append", metavar="KEY[=VALUE]")
    p = cmd(m, "show", model_show, "show one model version")
    p.add_argument("name", metavar="NAME[:VERSION]")
    p.add_argument("--version", type=int)
    p = cmd(m, "download", model_download, "download a model version's files")
    p.add_argument("name", metavar="NAME[:VERSION]")
    p.add_argument("--version", type=int)
    p.add_argument("--target-dir", default=".")
    p.add_argument("--overwrite", action="store_true")
    p = cmd(m, "delete", model_delete, "delete a model and all its versions")
    p.add_argument("name")
    p.add_argument("--ignore-not-found", action="store_true")

    # image
    i = kinds.add_parser("image", help="scoring images").add_subparsers(
        dest="verb", required=True, parser_class=_Parser
    )
    p = cmd(i, "create", image_create, "build a scoring image from models and a score.py")
    p.add_argument("name")
    p.add_argument("--model", action="append", required=True, metavar="NAME[:VERSION]")
    _add_image_config(p, required=True)
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--description")
    _add_wait(p, 1800.0)
    p = cmd(i, "list", image_list, "list images")
    p.add_argument("--model-name")
    p.add_argument("--tag", action="append", metavar="KEY[=VALUE]")
    p = cmd(i, "show", image_show, "show an image")
    p.add_argument("name")
    p = cmd(i, "logs", image_logs, "print an image's build log (tail)")
    p.add_argument("name")
    p = cmd(i, "delete", image_delete, "delete an image")
    p.add_argument("name")
    p.add_argument("--ignore-not-found", action="store_true")

    # webservice
    w = kinds.add_parser(
        "webservice", aliases=["ws", "service"], help="deployed services"
    ).add_subparsers(dest="verb", required=True, parser_class=_Parser)
    p = cmd(w, "deploy", webservice_deploy, "deploy from model files, models, or an image")
    p.add_argument("name")
    p.add_argument("--model-file", action="append", metavar="PATH", help="option 1: files")
    p.add_argument("--model", action="append", metavar="NAME[:VERSION]", help="option 2")
    p.add_argument("--image", metavar="NAME[:VERSION]", help="option 3: a built image")
    _add_image_config(p, required=False)
    p.add_argument("--cpu-cores", type=float, default=None, help="default 0.1 (Azure's)")
    p.add_argument("--memory-gb", type=float, default=None, help="default 0.5 (Azure's)")
    p.add_argument("--auth", action="store_true", default=None, help="require a key")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--description")
    p.add_argument("--overwrite", action="store_true")
    _add_wait(p, 1800.0)
    p = cmd(w, "list", webservice_list, "list webservices")
    p.add_argument("--model-name")
    p.add_argument("--tag", action="append", metavar="KEY[=VALUE]")
    p = cmd(w, "show", webservice_show, "show a webservice")
    p.add_argument("name")
    p = cmd(w, "run", webservice_run, "POST input to the service's /score and print the answer")
    p.add_argument("name")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="the request body (JSON text)")
    src.add_argument("--file", help="a file with the request body, - for stdin")
    p = cmd(w, "logs", webservice_logs, "print the service Pod's log")
    p.add_argument("name")
    p.add_argument("--tail", type=int, default=5000)
    p.add_argument("--previous", action="store_true", help="the previous (crashed) container")
    p = cmd(w, "keys", webservice_keys, "print the auth keys")
    p.add_argument("name")
    p = cmd(w, "get-token", webservice_get_token, "print a token (token auth) and its refresh time")
    p.add_argument("name")
    p = cmd(w, "regen-key", webservice_regen_key, "regenerate the Primary or Secondary key")
    p.add_argument("name")
    p.add_argument("--key", required=True, choices=["Primary", "Secondary", "primary", "secondary"])
    p.add_argument("--set-key", help="use this value instead of a random one")
    p = cmd(w, "delete", webservice_delete, "delete a webservice (fine if already gone)")
    p.add_argument("name")
    p.add_argument("--ignore-not-found", action="store_true", default=True, help=argparse.SUPPRESS)

    kinds.add_parser(
        "serve", help="run a score.py locally (kaci-runtime; its options follow)", add_help=False
    )
    return parser


def _show_warning(
    message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    # `kaci serve ...` hands everything after it to kaci-runtime untouched.
    if "serve" in argv:
        idx = argv.index("serve")
        if all(a.startswith("-") for a in argv[:idx]):
            from kaci_runtime.cli import main as runtime_main

            return runtime_main(argv[idx + 1 :])
    warnings.showwarning = _show_warning
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exitcodes.USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.kind == "serve":
        from kaci_runtime.cli import main as runtime_main

        return runtime_main([])
    try:
        ws = workspace_from_args(args)
        # The SDK prints progress the way Azure's did (print, rich): on a terminal
        # that goes to stderr here, so stdout holds only the result (`-o json | jq`).
        with contextlib.redirect_stdout(sys.stderr):
            result: int = args.func(args, ws, out)
        return result
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exitcodes.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`kaci ... | head`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return exitcodes.OK
    except Exception as exc:  # every error: one readable line, never a traceback
        print(f"error: {exitcodes.one_line(exc)}", file=sys.stderr)
        return exitcodes.exit_code_for(exc)
