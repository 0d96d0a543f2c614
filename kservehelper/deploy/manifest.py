"""KServe InferenceService manifests (``kservehelper deploy``): a pure function of a target.

:func:`render_inference_service` turns a :class:`~kservehelper.deploy.target.DeployTarget` (read
from the model folders by :mod:`kservehelper.deploy.target`) into the manifest dict;
:func:`dump_manifest` writes it as YAML or JSON.

The image's CMD is ``kservehelper serve /app --port 8080 --name NAME --class CLS``. The manifest
repeats it as the container ``command`` only when it must differ or must receive arguments:
``--workers N`` (workers > 1), a transformer (KServe appends ``--model_name``,
``--predictor_host`` and ``--http_port`` to its args, which would otherwise replace the CMD),
and the predictor of a split (served under the InferenceService's model name).
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import yaml

from kservehelper.build.dockerfile import MODEL_PORT, serve_command
from kservehelper.config.deploy import DeployConfig
from kservehelper.deploy.target import DeployPart, DeployTarget

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
CONTAINER_NAME = "kserve-container"  # KServe finds the model container by this name
PROBE_PERIOD_SECONDS = 10
#: Knative gives up on a revision that is not ready within its progress deadline (default 10
#: minutes); it must cover the image pull plus the whole startup-probe window.
IMAGE_PULL_ALLOWANCE_SECONDS = 600


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
