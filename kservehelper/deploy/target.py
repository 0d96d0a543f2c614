"""Reading model folders into a :class:`DeployTarget` for ``kservehelper deploy``.

This is the I/O half of deploying: config.yaml, its ``deploy:`` section,
``.kservehelper/last-push.json`` and, for a transformer split, the predictor's folder. Every
mistake is a :class:`~kservehelper.errors.ConfigError` naming the file, the key and a fix.
:mod:`kservehelper.deploy.manifest` turns the target into the manifest.
"""

from __future__ import annotations

import ast
import json
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kservehelper.config.checks import (
    is_plainly_not_secret,
    looks_like_secret_name,
    looks_like_secret_value,
)
from kservehelper.config.deploy import DeployConfig, parse_deploy_config
from kservehelper.config.locate import CONFIG_FILE, LAST_PUSH_FILE
from kservehelper.config.project import ProjectConfig, load_config
from kservehelper.errors import ConfigError
from kservehelper.settings import Settings

#: Looks up a local image's id (``sha256:...``), or None when there is no such local image.
LocalImageId = Callable[[str], "str | None"]

#: Knative's default max-revision-timeout-seconds: longer request timeouts need cluster config.
KNATIVE_MAX_TIMEOUT_SECONDS = 600
TRANSFORMER_METHODS = ("preprocess", "postprocess")
PREDICT_METHODS = ("predict", "generate")


@dataclass(frozen=True)
class DeployPart:
    """One model folder as it will run: its config, ``deploy:`` settings and image."""

    config: ProjectConfig
    deploy: DeployConfig
    image: str
    gpu_build: bool


@dataclass(frozen=True)
class DeployTarget:
    """Everything :func:`render_inference_service` needs; ``predictor`` is set for a split."""

    main: DeployPart
    predictor: DeployPart | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The InferenceService name, which is also the model name both parts serve under."""
        return self.main.config.name or "model"


def shutdown_grace(deploy: DeployConfig) -> float:
    """Seconds the server drains after SIGTERM: ``deploy.shutdown_grace``, else its default."""
    if deploy.shutdown_grace is not None:
        return deploy.shutdown_grace
    return float(Settings.model_fields["shutdown_grace"].default)


def pushed_image(config: ProjectConfig, push_record: dict[str, Any] | None) -> str | None:
    """The ``repository@sha256:...`` reference of config's image, if push recorded one."""
    if not push_record or push_record.get("image") != config.image_or_default:
        return None
    reference = push_record.get("reference")
    return reference if isinstance(reference, str) and "@sha256:" in reference else None


def _read_push_record(model_dir: pathlib.Path) -> dict[str, Any] | None:
    path = model_dir / LAST_PUSH_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _class_methods(config: ProjectConfig) -> set[str]:
    """The method names the model class defines in its own body (read with ast, not imported)."""
    entry = config.model_dir / config.entrypoint
    tree = ast.parse(entry.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == config.class_name:
            return {
                item.name
                for item in node.body
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
    return set()


def _pushed_or_configured(
    config: ProjectConfig,
    config_path: pathlib.Path,
    local_image_id: LocalImageId | None,
    errors: list[str],
    warnings: list[str],
) -> str:
    """The pushed digest for config's image (refused when the local image was rebuilt since
    the push), else config's image."""
    record = _read_push_record(config.model_dir)
    image = config.image_or_default
    reference = pushed_image(config, record)
    local = local_image_id(image) if local_image_id is not None else None
    if reference is not None and record is not None:
        pushed_id = record.get("image_id")
        if local is not None and isinstance(pushed_id, str) and local != pushed_id:
            errors.append(
                f"{config_path}: the local image {image} ({local[:19]}) is not the one pushed "
                f"last ({reference}): it was rebuilt since; run `kservehelper push "
                f"{config.model_dir}` first, or pass --image to deploy another one"
            )
        return reference
    if config.image is None:
        warnings.append(
            f"{config_path}: no image set; the manifest uses '{image}', which a cluster can "
            "only pull if it was loaded onto its nodes. Set image: and run kservehelper push."
        )
    elif local is not None:
        warnings.append(
            f"{config_path}: {image} was built here but never pushed with `kservehelper push`; "
            "the cluster pulls whatever the registry has under that tag"
        )
    return image


def _deploy_warnings(part: DeployPart, config_path: pathlib.Path, warnings: list[str]) -> None:
    from kservehelper.deploy.manifest import own_annotations, settings_env

    deploy = part.deploy
    for name, value in deploy.env.items():
        if not isinstance(value, str):
            continue
        secretish = looks_like_secret_name(name) and not is_plainly_not_secret(value)
        if secretish or looks_like_secret_value(value):
            warnings.append(
                f"{config_path}: deploy.env.{name} is a plain value in config.yaml and in the "
                "manifest: keep credentials in a Kubernetes Secret, "
                f"{name}: {{secret: SECRET-NAME, key: KEY}}"
            )
    for name in sorted(set(deploy.env) & set(settings_env(deploy))):
        warnings.append(
            f"{config_path}: deploy.env.{name} is also set by a deploy: key, which wins; "
            "remove it from deploy.env"
        )
    for key in sorted(set(deploy.annotations) & set(own_annotations(deploy))):
        warnings.append(
            f"{config_path}: deploy.annotations.{key} is kservehelper's (from deploy.mode), "
            "which wins; set deploy.mode instead"
        )
    if part.config.build.user == "root":
        warnings.append(
            f"{config_path}: build.user is root: the pods cannot run as non-root, so a "
            "namespace enforcing the restricted Pod Security level refuses them"
        )


def _load_part(
    model_dir: pathlib.Path,
    image_override: str | None,
    local_image_id: LocalImageId | None,
    errors: list[str],
    warnings: list[str],
) -> DeployPart | None:
    """One folder's part, or None with its mistakes added to ``errors``."""
    try:
        config = load_config(model_dir)
    except ConfigError as error:
        errors.append(str(error))
        return None
    config_path = config.model_dir / CONFIG_FILE
    try:
        deploy = parse_deploy_config(config.deploy, config_path)
    except ConfigError as error:
        errors.append(str(error))
        return None
    gpu_build = bool(config.build.cuda or config.build.ngc)
    gpus = deploy.resources.gpu
    if gpus and not gpu_build and not config.build.base_image:
        errors.append(
            f"{config_path}: deploy.resources.gpu is {gpus} but the image is a CPU build; "
            "set build.cuda (e.g. '12.4') to build a CUDA image, or remove deploy.resources.gpu"
        )
    if deploy.mode == "serverless" and deploy.timeout > KNATIVE_MAX_TIMEOUT_SECONDS:
        warnings.append(
            f"{config_path}: deploy.timeout is {deploy.timeout}s; Knative refuses more than "
            f"{KNATIVE_MAX_TIMEOUT_SECONDS}s unless the cluster's config-defaults sets a larger "
            "max-revision-timeout-seconds"
        )
    if image_override is not None:
        image = image_override
    else:
        image = _pushed_or_configured(config, config_path, local_image_id, errors, warnings)
    part = DeployPart(config=config, deploy=deploy, image=image, gpu_build=gpu_build)
    _deploy_warnings(part, config_path, warnings)
    return part


def _host_label_warning(target: DeployTarget) -> list[str]:
    """KServe's host names join NAME-COMPONENT-NAMESPACE into one DNS label in raw mode (and
    with a common Knative domain template): it must fit in 63 characters."""
    namespace = target.main.deploy.namespace
    component = "transformer" if target.predictor is not None else "predictor"
    if namespace is None:
        return []
    label = f"{target.name}-{component}-{namespace}"
    if len(label) <= 63:
        return []
    return [
        f"{target.main.config.model_dir / CONFIG_FILE}: '{label}' ({len(label)} characters) "
        "is longer than a DNS label (63): KServe's host name for it would be refused; shorten "
        "name or deploy.namespace"
    ]


def load_deploy_target(
    model_dir: pathlib.Path,
    image: str | None = None,
    local_image_id: LocalImageId | None = None,
) -> DeployTarget:
    """Read ``model_dir`` (and its predictor folder, for a transformer) into a DeployTarget.

    Args:
        model_dir: The model folder holding config.yaml.
        image: Use this image for the main part instead of config.yaml's (or the pushed digest).
        local_image_id: How to find a local image's id, to refuse a pushed digest whose image
            was rebuilt since (``kservehelper deploy`` asks Docker); None skips that check.

    Raises:
        ConfigError: every invalid config.yaml or ``deploy:`` value of both folders at once,
            each naming file, key and fix.
    """
    errors: list[str] = []
    warnings: list[str] = []
    main = _load_part(model_dir, image, local_image_id, errors, warnings)
    if main is None:
        _predictor_errors_too(model_dir, local_image_id, errors)
        raise ConfigError("\n".join(dict.fromkeys(errors)))
    predictor = _load_predictor(main, local_image_id, errors, warnings)
    if errors:
        raise ConfigError("\n".join(dict.fromkeys(errors)))
    target = DeployTarget(main=main, predictor=predictor, warnings=warnings)
    warnings.extend(_host_label_warning(target))
    return target


def _predictor_errors_too(
    model_dir: pathlib.Path, local_image_id: LocalImageId | None, errors: list[str]
) -> None:
    """When the transformer's own ``deploy:`` is wrong, still check the predictor it names, so
    every mistake is reported in one go."""
    try:
        raw = load_config(model_dir).deploy.get("predictor")
    except ConfigError:
        return
    if isinstance(raw, str) and raw:
        folder = (model_dir.resolve() / raw).resolve()
        if folder != model_dir.resolve() and (folder / CONFIG_FILE).is_file():
            _load_part(folder, None, local_image_id, errors, [])


def _load_predictor(
    main: DeployPart,
    local_image_id: LocalImageId | None,
    errors: list[str],
    warnings: list[str],
) -> DeployPart | None:
    config_path = main.config.model_dir / CONFIG_FILE
    methods = _class_methods(main.config)
    is_transformer = set(TRANSFORMER_METHODS) <= methods and not methods & set(PREDICT_METHODS)
    if main.deploy.predictor is None:
        if is_transformer:
            errors.append(
                f"{config_path}: {main.config.class_name} is a transformer (preprocess and "
                "postprocess, no predict); name its predictor's folder in deploy.predictor, "
                "e.g. predictor: ../predictor"
            )
        return None
    if not is_transformer:
        errors.append(
            f"{config_path}: deploy.predictor is set, but {main.config.class_name} is not a "
            "transformer; define preprocess() and postprocess() instead of predict(), or "
            "remove deploy.predictor"
        )
        return None
    predictor_dir = (main.config.model_dir / main.deploy.predictor).resolve()
    if predictor_dir == main.config.model_dir or not (predictor_dir / CONFIG_FILE).is_file():
        errors.append(
            f"{config_path}: deploy.predictor '{main.deploy.predictor}' is not another model "
            "folder with a config.yaml; give the predictor's folder relative to this one, "
            "e.g. ../predictor"
        )
        return None
    predictor = _load_part(predictor_dir, None, local_image_id, errors, warnings)
    if predictor is None:
        return None
    predictor_path = predictor.config.model_dir / CONFIG_FILE
    if predictor.deploy.predictor is not None:
        errors.append(
            f"{predictor_path}: deploy.predictor: a predictor cannot have its own predictor; "
            "remove it"
        )
    if predictor.deploy.namespace not in (None, main.deploy.namespace):
        errors.append(
            f"{predictor_path}: deploy.namespace '{predictor.deploy.namespace}' differs from "
            f"the transformer's; both parts run in one InferenceService: set it in "
            f"{config_path} only"
        )
    if not set(PREDICT_METHODS) & _class_methods(predictor.config):
        errors.append(
            f"{predictor_path}: {predictor.config.class_name} defines no predict(); "
            "the predictor of a transformer split must"
        )
    return predictor
