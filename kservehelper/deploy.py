"""KServe InferenceService manifests for a model folder (``kservehelper deploy``).

Two halves, as DESIGN.md asks: :func:`load_deploy_target` reads the folders (config.yaml, the
``deploy:`` section, ``.kservehelper/last-push.json``, the predictor folder of a transformer
split) and raises :class:`~kservehelper.errors.ConfigError` on any mistake;
:func:`render_inference_service` is a pure function from that target to the manifest dict;
:func:`dump_manifest` writes it as YAML or JSON.

The image's CMD is ``kservehelper serve /app --port 8080 --name NAME --class CLS``. The manifest
repeats it as the container ``command`` only when it must differ or must receive arguments:
``--workers N`` (workers > 1), a transformer (KServe appends ``--model_name``,
``--predictor_host`` and ``--http_port`` to its args, which would otherwise replace the CMD),
and the predictor of a split (served under the InferenceService's model name).
"""

from __future__ import annotations

import ast
import json
import math
import pathlib
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from kservehelper.build.config import CONFIG_FILE, ProjectConfig, load_config
from kservehelper.build.dockerfile import MODEL_PORT, serve_command
from kservehelper.deploy_config import DeployConfig, parse_deploy_config
from kservehelper.errors import ConfigError

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
CONTAINER_NAME = "kserve-container"  # KServe finds the model container by this name
LAST_PUSH_FILE = pathlib.Path(".kservehelper") / "last-push.json"
PROBE_PERIOD_SECONDS = 10
#: Knative gives up on a revision that is not ready within its progress deadline (default 10
#: minutes); it must cover the image pull plus the whole startup-probe window.
IMAGE_PULL_ALLOWANCE_SECONDS = 600
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


def _container_command(part: DeployPart, name: str, explicit: bool) -> list[str] | None:
    workers = part.deploy.workers
    if not explicit and workers == 1 and name == part.config.name:
        return None  # the image's CMD already says this
    command = serve_command(part.config.model_copy(update={"name": name}))
    if workers > 1:
        command += ["--workers", str(workers)]
    return command


def _env(deploy: DeployConfig) -> list[dict[str, Any]]:
    values: dict[str, Any] = {}
    if deploy.upload_to is not None:
        values["KSERVEHELPER_UPLOAD_TO"] = deploy.upload_to
    if deploy.max_concurrency is not None:
        values["KSERVEHELPER_MAX_CONCURRENCY"] = str(deploy.max_concurrency)
    values.update(deploy.env)
    env: list[dict[str, Any]] = []
    for name, value in values.items():
        if isinstance(value, str):
            env.append({"name": name, "value": value})
            continue
        ref: dict[str, Any] = {"name": value.secret, "key": value.key}
        if value.optional:
            ref["optional"] = True
        env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return env


def _resources(part: DeployPart) -> dict[str, Any]:
    wanted = part.deploy.resources
    requests: dict[str, Any] = {"cpu": wanted.cpu, "memory": wanted.memory}
    limits: dict[str, Any] = {"memory": wanted.memory_limit or wanted.memory}
    if wanted.cpu_limit is not None:
        limits["cpu"] = wanted.cpu_limit
    gpus = wanted.gpu if wanted.gpu is not None else (1 if part.gpu_build else 0)
    if gpus:
        # Extended resources are set as limits; Kubernetes copies them to requests.
        limits[wanted.gpu_resource] = gpus
    return {"requests": requests, "limits": limits}


def _probes(deploy: DeployConfig, name: str) -> dict[str, Any]:
    """Readiness on the model's V1 endpoint (503 until load() returns), and a startup probe
    that allows ``max_load_time`` seconds before Kubernetes restarts a loading container."""
    check = {"path": f"/v1/models/{name}", "port": MODEL_PORT}
    return {
        "readinessProbe": {
            "httpGet": dict(check),
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": dict(check),
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": max(1, math.ceil(deploy.max_load_time / PROBE_PERIOD_SECONDS)),
        },
    }


def _scaling(deploy: DeployConfig) -> dict[str, Any]:
    default_metric = "concurrency" if deploy.mode == "serverless" else "cpu"
    metric = deploy.scale_metric or default_metric
    target = deploy.scale_target
    if target is None:
        per_process = deploy.max_concurrency or 1
        target = deploy.workers * per_process if metric == "concurrency" else 80
    return {
        "minReplicas": deploy.min_replicas,
        "maxReplicas": deploy.max_replicas,
        "scaleMetric": metric,
        "scaleTarget": target,
    }


def _component(part: DeployPart, name: str, explicit_command: bool) -> dict[str, Any]:
    """The ``spec.predictor`` / ``spec.transformer`` of one part."""
    deploy = part.deploy
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": part.image}
    command = _container_command(part, name, explicit_command)
    if command is not None:
        container["command"] = command
    container["ports"] = [{"containerPort": MODEL_PORT, "protocol": "TCP"}]
    env = _env(deploy)
    if env:
        container["env"] = env
    if deploy.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in deploy.env_from_secrets]
    container["resources"] = _resources(part)
    container.update(_probes(deploy, name))
    if deploy.secret_mounts:
        container["volumeMounts"] = [
            {"name": f"secret-{secret}", "mountPath": path, "readOnly": True}
            for secret, path in deploy.secret_mounts.items()
        ]

    component: dict[str, Any] = {**_scaling(deploy), "timeout": deploy.timeout}
    annotations: dict[str, str] = {}
    if deploy.mode == "serverless":
        deadline = deploy.max_load_time + IMAGE_PULL_ALLOWANCE_SECONDS
        annotations["serving.knative.dev/progress-deadline"] = f"{deadline}s"
        if component["scaleMetric"] in ("cpu", "memory"):
            annotations["autoscaling.knative.dev/class"] = "hpa.autoscaling.knative.dev"
    if annotations:
        component["annotations"] = annotations
    if deploy.service_account:
        component["serviceAccountName"] = deploy.service_account
    if deploy.image_pull_secrets:
        component["imagePullSecrets"] = [{"name": s} for s in deploy.image_pull_secrets]
    if deploy.node_selector:
        component["nodeSelector"] = dict(deploy.node_selector)
    if deploy.tolerations:
        component["tolerations"] = [
            {
                _TOLERATION_KEYS.get(key, key): value
                for key, value in toleration.model_dump(exclude_none=True).items()
            }
            for toleration in deploy.tolerations
        ]
    if deploy.secret_mounts:
        component["volumes"] = [
            {"name": f"secret-{secret}", "secret": {"secretName": secret}}
            for secret in deploy.secret_mounts
        ]
    component["containers"] = [container]
    return component


_TOLERATION_KEYS = {"toleration_seconds": "tolerationSeconds"}


def render_inference_service(target: DeployTarget) -> dict[str, Any]:
    """The ``serving.kserve.io/v1beta1`` InferenceService for ``target`` (pure)."""
    main = target.main
    deploy = main.deploy
    metadata: dict[str, Any] = {"name": target.name}
    if deploy.namespace:
        metadata["namespace"] = deploy.namespace
    metadata["labels"] = {
        "app.kubernetes.io/name": target.name,
        "app.kubernetes.io/managed-by": "kservehelper",
        **deploy.labels,
    }
    metadata["annotations"] = {
        # The pre-0.17 names: KServe 0.17+ maps them to KNative / Standard, older ones need them.
        "serving.kserve.io/deploymentMode": (
            "Serverless" if deploy.mode == "serverless" else "RawDeployment"
        ),
        **deploy.annotations,
    }
    spec: dict[str, Any]
    if target.predictor is None:
        spec = {"predictor": _component(main, target.name, explicit_command=False)}
    else:
        spec = {
            "predictor": _component(target.predictor, target.name, explicit_command=False),
            "transformer": _component(main, target.name, explicit_command=True),
        }
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def dump_manifest(manifest: dict[str, Any], output_format: Literal["yaml", "json"]) -> str:
    """The manifest as YAML (key order kept) or indented JSON, ending with a newline."""
    if output_format == "json":
        return json.dumps(manifest, indent=2) + "\n"
    return yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False)
