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

import hashlib
import json
import math
import posixpath
from typing import Any, Literal

import yaml

from kservehelper.build.dockerfile import MODEL_PORT, USER_ID, serve_command
from kservehelper.config.deploy import DeployConfig
from kservehelper.deploy.target import DeployPart, DeployTarget, shutdown_grace

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
CONTAINER_NAME = "kserve-container"  # KServe finds the model container by this name
PROBE_PERIOD_SECONDS = 10
#: Knative gives up on a revision that is not ready within its progress deadline (default 10
#: minutes); it must cover the image pull plus the whole startup-probe window.
IMAGE_PULL_ALLOWANCE_SECONDS = 600
#: Kubernetes kills the container this long after SIGTERM beyond the server's own drain time:
#: room for the last responses to be written and the process to exit.
TERMINATION_MARGIN_SECONDS = 15
LIVENESS_PATH = "/v2/health/live"
#: Where the server writes (the system temp dir, its default input/output folders): an emptyDir
#: when the root file system is read-only.
TEMP_DIR = "/tmp"


def _container_command(part: DeployPart, name: str, explicit: bool) -> list[str] | None:
    workers = part.deploy.workers
    if not explicit and workers == 1 and name == part.config.name:
        return None  # the image's CMD already says this
    command = serve_command(part.config.model_copy(update={"name": name}))
    if workers > 1:
        command += ["--workers", str(workers)]
    return command


def _env(deploy: DeployConfig) -> list[dict[str, Any]]:
    values: dict[str, Any] = dict(deploy.env)
    # The deploy: keys win over the same variable in deploy.env (target.py warns about it).
    values.update(settings_env(deploy))
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


def settings_env(deploy: DeployConfig) -> dict[str, str]:
    """The KSERVEHELPER_* variables the ``deploy:`` keys set."""
    values: dict[str, str] = {}
    if deploy.upload_to is not None:
        values["KSERVEHELPER_UPLOAD_TO"] = deploy.upload_to
    if deploy.max_concurrency is not None:
        values["KSERVEHELPER_MAX_CONCURRENCY"] = str(deploy.max_concurrency)
    if deploy.max_queue is not None:
        values["KSERVEHELPER_MAX_QUEUE"] = str(deploy.max_queue)
    if deploy.shutdown_grace is not None:
        values["KSERVEHELPER_SHUTDOWN_GRACE"] = f"{deploy.shutdown_grace:g}"
    if deploy.allowed_inputs:
        values["KSERVEHELPER_ALLOWED_INPUTS"] = ",".join(deploy.allowed_inputs)
    if deploy.allowed_destinations:
        values["KSERVEHELPER_ALLOWED_DESTINATIONS"] = ",".join(deploy.allowed_destinations)
    return values


def _resources(part: DeployPart) -> dict[str, Any]:
    wanted = part.deploy.resources
    requests: dict[str, Any] = {"cpu": wanted.cpu, "memory": wanted.memory}
    limits: dict[str, Any] = {"memory": wanted.memory_limit or wanted.memory}
    if wanted.cpu_limit is not None:
        limits["cpu"] = wanted.cpu_limit
    gpus = wanted.gpu if wanted.gpu is not None else (1 if part.gpu_build else 0)
    if gpus:
        # Extended resources are set as limits; Kubernetes copies them to requests.
        limits[wanted.gpu_resource] = str(gpus)
    return {"requests": requests, "limits": limits}


def _probes(deploy: DeployConfig, name: str) -> dict[str, Any]:
    """Readiness on the model's V1 endpoint (503 until load() returns), liveness on the
    server's live route (which fails while the model is not loaded, e.g. after an unload), and
    a startup probe that allows ``max_load_time`` seconds before Kubernetes restarts a loading
    container (liveness and readiness start once it has passed)."""
    check = {"path": f"/v1/models/{name}", "port": MODEL_PORT}
    return {
        "livenessProbe": {
            "httpGet": {"path": LIVENESS_PATH, "port": MODEL_PORT},
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
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


def _security(part: DeployPart) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod, container) security contexts meeting the restricted Pod Security Standard: not
    root, no privilege escalation, no capabilities, the runtime's seccomp profile. An image
    built with ``build.user: root`` cannot run as non-root (target.py warns)."""
    as_root = part.config.build.user == "root"
    pod: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    container: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    if not as_root:
        pod["runAsNonRoot"] = True
        container.update(runAsNonRoot=True, runAsUser=USER_ID, runAsGroup=USER_ID)
    if part.deploy.read_only_root_filesystem:
        container["readOnlyRootFilesystem"] = True
    return pod, container


def _writable_folders(deploy: DeployConfig) -> list[tuple[str, str]]:
    """(volume name, mount path) emptyDirs for a read-only root file system."""
    if not deploy.read_only_root_filesystem:
        return []
    folders = [("kservehelper-tmp", TEMP_DIR)]
    output_dir = deploy.env.get("KSERVEHELPER_OUTPUT_DIR")
    if isinstance(output_dir, str) and output_dir.startswith("/"):
        normal = posixpath.normpath(output_dir)
        if normal != TEMP_DIR and not normal.startswith(TEMP_DIR + "/"):
            folders.append(("kservehelper-outputs", normal))
    return folders


def volume_name(secret: str) -> str:
    """A volume name (a DNS label: no dots, at most 63) for a Secret's name, unique per name."""
    base = "secret-" + secret.replace(".", "-")
    if len(base) <= 63 and "." not in secret:
        return base
    digest = hashlib.sha256(secret.encode()).hexdigest()[:8]
    return f"{base[:54].rstrip('-')}-{digest}"


def _component(part: DeployPart, name: str, explicit_command: bool) -> dict[str, Any]:
    """The ``spec.predictor`` / ``spec.transformer`` of one part."""
    deploy = part.deploy
    pod_security, container_security = _security(part)
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
    container["securityContext"] = container_security
    writable = _writable_folders(deploy)
    mounts = [
        {"name": volume_name(secret), "mountPath": path, "readOnly": True}
        for secret, path in deploy.secret_mounts.items()
    ]
    mounts += [{"name": volume, "mountPath": path} for volume, path in writable]
    if mounts:
        container["volumeMounts"] = mounts

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
    volumes: list[dict[str, Any]] = [
        {"name": volume_name(secret), "secret": {"secretName": secret}}
        for secret in deploy.secret_mounts
    ]
    volumes += [{"name": volume, "emptyDir": {}} for volume, _ in writable]
    if volumes:
        component["volumes"] = volumes
    component["securityContext"] = pod_security
    grace = shutdown_grace(deploy)
    component["terminationGracePeriodSeconds"] = math.ceil(grace) + TERMINATION_MARGIN_SECONDS
    component["containers"] = [container]
    return component


_TOLERATION_KEYS = {"toleration_seconds": "tolerationSeconds"}


def own_labels(name: str) -> dict[str, str]:
    """The labels kservehelper sets on every InferenceService."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kservehelper"}


def own_annotations(deploy: DeployConfig) -> dict[str, str]:
    """The annotations kservehelper sets from ``deploy:`` keys (they win over its annotations)."""
    # The pre-0.17 names: KServe 0.17+ maps them to KNative / Standard, older ones need them.
    mode = "Serverless" if deploy.mode == "serverless" else "RawDeployment"
    return {"serving.kserve.io/deploymentMode": mode}


def render_inference_service(target: DeployTarget) -> dict[str, Any]:
    """The ``serving.kserve.io/v1beta1`` InferenceService for ``target`` (pure)."""
    main = target.main
    deploy = main.deploy
    metadata: dict[str, Any] = {"name": target.name}
    if deploy.namespace:
        metadata["namespace"] = deploy.namespace
    # Ours come last: they win over a deploy.labels/annotations entry of the same key.
    metadata["labels"] = {**deploy.labels, **own_labels(target.name)}
    metadata["annotations"] = {**deploy.annotations, **own_annotations(deploy)}
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
