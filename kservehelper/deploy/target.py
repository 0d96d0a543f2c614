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
from dataclasses import dataclass, field
from typing import Any

from kservehelper.config.deploy import DeployConfig, parse_deploy_config
from kservehelper.config.locate import CONFIG_FILE, LAST_PUSH_FILE
from kservehelper.config.project import ProjectConfig, load_config
from kservehelper.errors import ConfigError

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


def _load_part(
    model_dir: pathlib.Path, image_override: str | None, warnings: list[str]
) -> DeployPart:
    config = load_config(model_dir)
    config_path = config.model_dir / CONFIG_FILE
    deploy = parse_deploy_config(config.deploy, config_path)
    gpu_build = bool(config.build.cuda or config.build.ngc)
    gpus = deploy.resources.gpu
    if gpus and not gpu_build and not config.build.base_image:
        raise ConfigError(
            f"{config_path}: deploy.resources.gpu is {gpus} but the image is a CPU build; "
            "set build.cuda (e.g. '12.4') to build a CUDA image, or remove deploy.resources.gpu"
        )
    if deploy.mode == "serverless" and deploy.timeout > KNATIVE_MAX_TIMEOUT_SECONDS:
        warnings.append(
            f"{config_path}: deploy.timeout is {deploy.timeout}s; Knative refuses more than "
            f"{KNATIVE_MAX_TIMEOUT_SECONDS}s unless the cluster's config-defaults sets a larger "
            "max-revision-timeout-seconds"
        )
    image = image_override or pushed_image(config, _read_push_record(config.model_dir))
    if image is None:
        image = config.image_or_default
        if config.image is None:
            warnings.append(
                f"{config_path}: no image set; the manifest uses '{image}', which a cluster can "
                "only pull if it was loaded onto its nodes. Set image: and run kservehelper push."
            )
    return DeployPart(config=config, deploy=deploy, image=image, gpu_build=gpu_build)


def load_deploy_target(model_dir: pathlib.Path, image: str | None = None) -> DeployTarget:
    """Read ``model_dir`` (and its predictor folder, for a transformer) into a DeployTarget.

    Args:
        model_dir: The model folder holding config.yaml.
        image: Use this image for the main part instead of config.yaml's (or the pushed digest).

    Raises:
        ConfigError: any invalid config.yaml or ``deploy:`` value, naming file, key and fix.
    """
    warnings: list[str] = []
    main = _load_part(model_dir, image, warnings)
    config_path = main.config.model_dir / CONFIG_FILE
    methods = _class_methods(main.config)
    is_transformer = set(TRANSFORMER_METHODS) <= methods and not methods & set(PREDICT_METHODS)
    if main.deploy.predictor is None:
        if is_transformer:
            raise ConfigError(
                f"{config_path}: {main.config.class_name} is a transformer (preprocess and "
                "postprocess, no predict); name its predictor's folder in deploy.predictor, "
                "e.g. predictor: ../predictor"
            )
        return DeployTarget(main=main, warnings=warnings)
    if not is_transformer:
        raise ConfigError(
            f"{config_path}: deploy.predictor is set, but {main.config.class_name} is not a "
            "transformer; define preprocess() and postprocess() instead of predict(), or "
            "remove deploy.predictor"
        )
    predictor_dir = (main.config.model_dir / main.deploy.predictor).resolve()
    if predictor_dir == main.config.model_dir or not (predictor_dir / CONFIG_FILE).is_file():
        raise ConfigError(
            f"{config_path}: deploy.predictor '{main.deploy.predictor}' is not another model "
            "folder with a config.yaml; give the predictor's folder relative to this one, "
            "e.g. ../predictor"
        )
    predictor = _load_part(predictor_dir, None, warnings)
    predictor_path = predictor.config.model_dir / CONFIG_FILE
    if predictor.deploy.predictor is not None:
        raise ConfigError(
            f"{predictor_path}: deploy.predictor: a predictor cannot have its own predictor; "
            "remove it"
        )
    if predictor.deploy.namespace not in (None, main.deploy.namespace):
        raise ConfigError(
            f"{predictor_path}: deploy.namespace '{predictor.deploy.namespace}' differs from "
            f"the transformer's; both parts run in one InferenceService: set it in "
            f"{config_path} only"
        )
    if not set(PREDICT_METHODS) & _class_methods(predictor.config):
        raise ConfigError(
            f"{predictor_path}: {predictor.config.class_name} defines no predict(); "
            "the predictor of a transformer split must"
        )
    return DeployTarget(main=main, predictor=predictor, warnings=warnings)
