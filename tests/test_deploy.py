"""InferenceService manifests: every one validates against the real KServe CRD schema and the
Kubernetes core schemas; every invalid ``deploy:`` value is reported with its key and a fix."""

from __future__ import annotations

import json
import pathlib
import shutil
import textwrap
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from kservehelper.build.dockerfile import serve_command
from kservehelper.config.locate import LAST_PUSH_FILE
from kservehelper.deploy.manifest import dump_manifest, render_inference_service
from kservehelper.deploy.target import DeployTarget, load_deploy_target
from kservehelper.errors import ConfigError
from tests.conftest import EXAMPLES
from tests.kserve_schema import inference_service_schema

KUBERNETES_VERSION = "1.33"
DIGEST = "sha256:" + "ab" * 32

PREDICT_MODEL = """
class Model:
    def load(self):
        pass

    def predict(self, text: str) -> str:
        return text
"""
TRANSFORMER_MODEL = """
class Model:
    def preprocess(self, text: str) -> dict:
        return {"text": text}

    def postprocess(self, response: dict) -> dict:
        return response
"""


# ---------------------------------------------------------------- validation against real schemas


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """Where the manifest breaks the InferenceService schema derived from the kserve package:
    wrong types, missing required fields, and fields the API server would prune (unknown)."""
    validator = jsonschema.Draft7Validator(inference_service_schema())
    return [
        f"{'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(manifest)
    ]


def component_pod(manifest: dict[str, Any], component: str) -> dict[str, Any]:
    """The Pod KServe makes of a component: its PodSpec fields, as the core API sees them."""
    pod_fields = (
        "containers",
        "serviceAccountName",
        "nodeSelector",
        "tolerations",
        "imagePullSecrets",
        "volumes",
    )
    spec = manifest["spec"][component]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{manifest['metadata']['name']}-{component}"},
        "spec": {key: spec[key] for key in pod_fields if key in spec},
    }


def assert_valid_manifest(manifest: dict[str, Any]) -> None:
    """The InferenceService schema (no unknown field) plus the strict Kubernetes Pod schema."""
    assert schema_errors(manifest) == []
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    for component in ("predictor", "transformer"):
        if component in manifest["spec"]:
            pod = component_pod(manifest, component)
            kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    # What kubectl sends: the YAML and JSON forms read back to the same document.
    assert yaml.safe_load(dump_manifest(manifest, "yaml")) == manifest
    assert json.loads(dump_manifest(manifest, "json")) == manifest


def test_the_validators_catch_mistakes() -> None:
    manifest = render_inference_service(load_deploy_target(EXAMPLES / "gpu-style"))
    broken = json.loads(json.dumps(manifest))
    broken["spec"]["predictor"]["scaleMetric"] = "latency"
    (error,) = schema_errors(broken)
    assert error == (
        "spec.predictor.scaleMetric: 'latency' is not one of "
        "['concurrency', 'rps', 'cpu', 'memory']"
    )
    typo = json.loads(json.dumps(manifest))
    typo["spec"]["predictor"]["minReplica"] = 1  # the API server would drop it silently
    (error,) = schema_errors(typo)
    assert error.startswith("spec.predictor: Additional properties") and "minReplica" in error
    nameless = json.loads(json.dumps(manifest))
    del nameless["spec"]["predictor"]["containers"][0]["name"]
    assert schema_errors(nameless) == ["spec.predictor.containers.0: 'name' is a required property"]
    wrong_type = json.loads(json.dumps(manifest))
    wrong_type["spec"]["predictor"]["timeout"] = "300"
    assert schema_errors(wrong_type) == ["spec.predictor.timeout: '300' is not of type 'integer'"]
    bad_probe = json.loads(json.dumps(manifest))
    bad_probe["spec"]["predictor"]["containers"][0]["startupProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            component_pod(bad_probe, "predictor"), KUBERNETES_VERSION, strict=True
        )


# ---------------------------------------------------------------------------------- model folders


def write_model(
    folder: pathlib.Path,
    deploy: dict[str, Any] | None = None,
    *,
    name: str | None = "demo",
    build: dict[str, Any] | None = None,
    source: str = PREDICT_MODEL,
    image: str | None = "registry.example.com/demo:1.0",
) -> pathlib.Path:
    """A model folder with config.yaml (with ``deploy``) and model.py."""
    folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"build": build or {"python_version": "3.11"}}
    if name is not None:
        config["name"] = name
    if image:
        config["image"] = image
    if deploy is not None:
        config["deploy"] = deploy
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
    (folder / "model.py").write_text(textwrap.dedent(source), "utf-8")
    return folder


def manifest_of(folder: pathlib.Path, image: str | None = None) -> dict[str, Any]:
    manifest = render_inference_service(load_deploy_target(folder, image=image))
    assert_valid_manifest(manifest)
    return manifest


def container(manifest: dict[str, Any], component: str = "predictor") -> dict[str, Any]:
    containers = manifest["spec"][component]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


GPU_BUILD = {"python_version": "3.11", "cuda": "12.4"}
NGC_BUILD = {"cuda": "12.4", "ngc": True}


# -------------------------------------------------------------------------------------- examples


def example_folders() -> list[pathlib.Path]:
    return sorted(p for p in EXAMPLES.iterdir() if (p / "config.yaml").is_file())


@pytest.mark.parametrize("folder", example_folders(), ids=lambda p: p.name)
def test_every_example_deploys_to_a_valid_manifest(
    folder: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    try:
        target = load_deploy_target(folder)
    except ConfigError as error:
        if "is a transformer" not in str(error):
            raise
        # A transformer example without deploy.predictor yet: deploy it with its predictor.
        shutil.copytree(folder, tmp_path / folder.name)
        shutil.copytree(EXAMPLES / "predictor", tmp_path / "predictor")
        config_path = tmp_path / folder.name / "config.yaml"
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        config["deploy"] = {"predictor": "../predictor"}
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        target = load_deploy_target(tmp_path / folder.name)
    manifest = render_inference_service(target)
    assert_valid_manifest(manifest)
    assert manifest["metadata"]["name"] == target.name
    probe = container(manifest)["readinessProbe"]["httpGet"]
    assert probe == {"path": f"/v1/models/{target.name}", "port": 8080}


def test_gpu_style_example_carries_its_deploy_section() -> None:
    manifest = manifest_of(EXAMPLES / "gpu-style")
    predictor = manifest["spec"]["predictor"]
    assert manifest["metadata"]["namespace"] == "ml-models"
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert predictor["timeout"] == 300
    assert predictor["serviceAccountName"] == "model-runner"
    resources = container(manifest)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"  # a quantity
    assert resources["requests"] == {"cpu": "4", "memory": "16Gi"}
    startup = container(manifest)["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1200


# ------------------------------------------------------------------------------ matrix of settings

SETTINGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespace-and-replicas": {"namespace": "team-a", "min_replicas": 0, "max_replicas": 5},
    "rps": {"scale_metric": "rps", "scale_target": 20, "max_replicas": 3},
    "serverless-cpu-hpa": {"scale_metric": "cpu", "scale_target": 70, "max_replicas": 4},
    "raw-memory": {"mode": "raw", "scale_metric": "memory", "max_replicas": 2},
    "raw-default-metric": {"mode": "raw", "min_replicas": 2, "max_replicas": 6},
    "resources": {
        "resources": {"cpu": 2, "memory": "8Gi", "cpu_limit": "4", "memory_limit": "10Gi"}
    },
    "millicores": {"resources": {"cpu": "500m", "memory": "512Mi"}},
    "amd-gpus": {"resources": {"gpu": 2, "gpu_resource": "amd.com/gpu"}},
    "no-gpu": {"resources": {"gpu": 0}},
    "workers": {"workers": 4, "max_concurrency": 2},
    "timeouts": {"timeout": 3600, "max_load_time": 45},
    "env-and-secrets": {
        "upload_to": "gs://bucket/outputs",
        "env": {
            "LOG_LEVEL": "debug",
            "RETRIES": 3,
            "VERBOSE": True,
            "AWS_ACCESS_KEY_ID": {"secret": "s3-credentials", "key": "access-key-id"},
            "AWS_SECRET_ACCESS_KEY": {
                "secret": "s3-credentials",
                "key": "secret-access-key",
                "optional": True,
            },
        },
        "env_from_secrets": ["upload-settings"],
        "secret_mounts": {"gcs-key": "/var/secrets/gcs"},
    },
    "scheduling": {
        "service_account": "model-runner",
        "image_pull_secrets": ["registry-credentials"],
        "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "spot", "value": "true", "effect": "NoExecute", "toleration_seconds": 60},
            {"operator": "Exists"},
        ],
    },
    "labels-annotations": {
        "labels": {"team": "vision"},
        "annotations": {"example.com/owner": "ml-platform"},
    },
}
BUILDS: dict[str, dict[str, Any]] = {
    "cpu": {"python_version": "3.11"},
    "cuda": GPU_BUILD,
    "ngc": NGC_BUILD,
}


@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_matrix_of_settings_validates(tmp_path: pathlib.Path, setting: str, build: str) -> None:
    deploy = SETTINGS[setting]
    wants_gpus = bool(deploy.get("resources", {}).get("gpu"))
    folder = write_model(tmp_path / "m", deploy, build=BUILDS[build])
    if build == "cpu" and wants_gpus:
        with pytest.raises(ConfigError, match=r"deploy\.resources\.gpu .* CPU build"):
            load_deploy_target(folder)
        return
    manifest = manifest_of(folder)
    limits = container(manifest)["resources"]["limits"]
    gpu_limits = {k: v for k, v in limits.items() if k.endswith("/gpu")}
    if build == "cpu":
        assert gpu_limits == {}
    elif "gpu" in deploy.get("resources", {}):
        expected = deploy["resources"]["gpu"]
        wanted = {deploy["resources"]["gpu_resource"]: str(expected)} if expected else {}
        assert gpu_limits == wanted
    else:
        assert gpu_limits == {"nvidia.com/gpu": "1"}


# ----------------------------------------------------------------------------------- behaviours


def test_defaults_are_explicit(tmp_path: pathlib.Path) -> None:
    manifest = manifest_of(write_model(tmp_path / "demo"))
    predictor = manifest["spec"]["predictor"]
    assert manifest["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Serverless"}
    assert "namespace" not in manifest["metadata"]
    assert predictor["scaleMetric"] == "concurrency"
    assert predictor["scaleTarget"] == 1  # one prediction at a time: scale out at 1 in flight
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 1)
    main = container(manifest)
    assert main["name"] == "kserve-container"
    assert main["image"] == "registry.example.com/demo:1.0"
    assert main["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert "command" not in main and "args" not in main  # the image's CMD runs
    assert main["resources"] == {
        "requests": {"cpu": "1", "memory": "2Gi"},
        "limits": {"memory": "2Gi"},
    }


def test_startup_window_follows_max_load_time(tmp_path: pathlib.Path) -> None:
    manifest = manifest_of(write_model(tmp_path / "demo", {"max_load_time": 1805}))
    startup = container(manifest)["startupProbe"]
    window = startup["periodSeconds"] * startup["failureThreshold"]
    assert 1805 <= window < 1805 + startup["periodSeconds"]
    assert startup["httpGet"] == {"path": "/v1/models/demo", "port": 8080}
    deadline = manifest["spec"]["predictor"]["annotations"]["serving.knative.dev/progress-deadline"]
    assert int(deadline.removesuffix("s")) > window  # Knative must not give up first


def test_raw_mode_has_no_knative_annotations(tmp_path: pathlib.Path) -> None:
    manifest = manifest_of(write_model(tmp_path / "demo", {"mode": "raw", "max_replicas": 3}))
    predictor = manifest["spec"]["predictor"]
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == (
        "RawDeployment"
    )
    assert "annotations" not in predictor
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("cpu", 80)


def test_cpu_metric_in_serverless_mode_uses_the_hpa_class(tmp_path: pathlib.Path) -> None:
    manifest = manifest_of(write_model(tmp_path / "demo", {"scale_metric": "cpu"}))
    annotations = manifest["spec"]["predictor"]["annotations"]
    assert annotations["autoscaling.knative.dev/class"] == "hpa.autoscaling.knative.dev"


def test_workers_set_the_command_explicitly(tmp_path: pathlib.Path) -> None:
    folder = write_model(tmp_path / "demo", {"workers": 3, "max_concurrency": 2})
    target = load_deploy_target(folder)
    manifest = manifest_of(folder)
    command = container(manifest)["command"]
    assert command == [*serve_command(target.main.config), "--workers", "3"]
    assert command[:4] == ["kservehelper", "serve", "/app", "--port"]
    assert manifest["spec"]["predictor"]["scaleTarget"] == 6  # 3 processes x 2 each
    env = {item["name"]: item for item in container(manifest)["env"]}
    assert env["KSERVEHELPER_MAX_CONCURRENCY"] == {
        "name": "KSERVEHELPER_MAX_CONCURRENCY",
        "value": "2",
    }


def test_env_secrets_and_mounts(tmp_path: pathlib.Path) -> None:
    manifest = manifest_of(write_model(tmp_path / "demo", SETTINGS["env-and-secrets"]))
    main = container(manifest)
    env = {item["name"]: item for item in main["env"]}
    assert env["KSERVEHELPER_UPLOAD_TO"]["value"] == "gs://bucket/outputs"
    assert env["RETRIES"]["value"] == "3" and env["VERBOSE"]["value"] == "true"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {
        "secretKeyRef": {"name": "s3-credentials", "key": "access-key-id"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert main["envFrom"] == [{"secretRef": {"name": "upload-settings"}}]
    assert main["volumeMounts"] == [
        {"name": "secret-gcs-key", "mountPath": "/var/secrets/gcs", "readOnly": True}
    ]
    assert manifest["spec"]["predictor"]["volumes"] == [
        {"name": "secret-gcs-key", "secret": {"secretName": "gcs-key"}}
    ]


def test_tolerations_use_kubernetes_field_names(tmp_path: pathlib.Path) -> None:
    manifest = manifest_of(write_model(tmp_path / "demo", SETTINGS["scheduling"]))
    tolerations = manifest["spec"]["predictor"]["tolerations"]
    assert tolerations[1] == {
        "key": "spot",
        "operator": "Equal",
        "value": "true",
        "effect": "NoExecute",
        "tolerationSeconds": 60,
    }
    assert manifest["spec"]["predictor"]["imagePullSecrets"] == [{"name": "registry-credentials"}]


# --------------------------------------------------------------------------------------- images


def test_pushed_digest_is_used(tmp_path: pathlib.Path) -> None:
    folder = write_model(tmp_path / "demo")
    record = {
        "image": "registry.example.com/demo:1.0",
        "digest": DIGEST,
        "reference": f"registry.example.com/demo@{DIGEST}",
    }
    (folder / LAST_PUSH_FILE).parent.mkdir()
    (folder / LAST_PUSH_FILE).write_text(json.dumps(record), encoding="utf-8")
    assert container(manifest_of(folder))["image"] == f"registry.example.com/demo@{DIGEST}"
    # --image wins over the record.
    assert container(manifest_of(folder, image="other.example/x:2"))["image"] == (
        "other.example/x:2"
    )
    # A record of another image (config.yaml changed since the push) is ignored.
    record["image"] = "registry.example.com/demo:0.9"
    (folder / LAST_PUSH_FILE).write_text(json.dumps(record), encoding="utf-8")
    assert container(manifest_of(folder))["image"] == "registry.example.com/demo:1.0"
    (folder / LAST_PUSH_FILE).write_text("{not json", encoding="utf-8")
    assert container(manifest_of(folder))["image"] == "registry.example.com/demo:1.0"


def test_long_serverless_timeout_warns(tmp_path: pathlib.Path) -> None:
    target = load_deploy_target(write_model(tmp_path / "demo", {"timeout": 3600}))
    assert any("max-revision-timeout-seconds" in warning for warning in target.warnings)
    raw = load_deploy_target(write_model(tmp_path / "raw", {"timeout": 3600, "mode": "raw"}))
    assert raw.warnings == []


def test_missing_image_warns(tmp_path: pathlib.Path) -> None:
    target = load_deploy_target(write_model(tmp_path / "demo", image=None))
    assert container(render_inference_service(target))["image"] == "demo:latest"
    assert any("no image set" in warning for warning in target.warnings)


# -------------------------------------------------------------------------------------- errors

ERRORS: list[tuple[Any, list[str]]] = [
    ({"resources": {"memory": "4GB"}}, ["deploy.resources.memory", "4Gi"]),
    ({"resources": {"memory": 4096}}, ["deploy.resources.memory", "4Gi"]),
    ({"resources": {"cpu": "two"}}, ["deploy.resources.cpu", "500m"]),
    ({"resources": {"gpus": 1}}, ["deploy.resources.gpus", "did you mean 'gpu'"]),
    ({"resources": {"gpu": -1}}, ["deploy.resources.gpu", "greater than or equal to 0"]),
    ({"resources": {"gpu_resource": "gpu"}}, ["deploy.resources.gpu_resource", "nvidia.com/gpu"]),
    ({"min_replica": 1}, ["unknown key 'deploy.min_replica'", "did you mean 'min_replicas'"]),
    ({"replicas": 2}, ["unknown key 'deploy.replicas'"]),
    ({"min_replicas": 3, "max_replicas": 2}, ["max_replicas (2) is below", "raise max_replicas"]),
    ({"scale_metric": "latency"}, ["deploy.scale_metric", "'concurrency'", "'latency'"]),
    ({"mode": "raw", "scale_metric": "rps"}, ["deploy", "needs mode: serverless"]),
    ({"mode": "raw", "min_replicas": 0}, ["deploy", "set min_replicas: 1"]),
    ({"scale_metric": "cpu", "min_replicas": 0}, ["cannot scale to zero"]),
    ({"scale_metric": "cpu", "scale_target": 300}, ["percentage"]),
    ({"mode": "knative"}, ["deploy.mode", "'serverless'", "'raw'"]),
    ({"timeout": "10s"}, ["deploy.timeout", "whole number"]),
    ({"max_load_time": 0}, ["deploy.max_load_time", "greater than or equal to 1"]),
    ({"workers": 0}, ["deploy.workers", "greater than or equal to 1"]),
    ({"workers": 1.5}, ["deploy.workers", "whole number"]),
    ({"namespace": "ML_Models"}, ["deploy.namespace", "e.g. 'ml-models'"]),
    ({"service_account": "Runner"}, ["deploy.service_account", "lowercase"]),
    ({"env": {"1BAD": "x"}}, ["deploy.env", "'1BAD' is not a valid environment variable"]),
    ({"env": {"KEY": None}}, ["deploy.env", "secret: NAME"]),
    ({"env": {"AWS_KEY": {"secret": "s3"}}}, ["deploy.env.AWS_KEY.key", "required"]),
    ({"env": {"AWS_KEY": {"secret": "s3", "keys": "x"}}}, ["did you mean 'key'"]),
    ({"env": {"AWS_KEY": ["x"]}}, ["deploy.env.AWS_KEY", "valid string"]),
    ({"secret_mounts": {"gcs-key": "secrets/gcs"}}, ["deploy.secret_mounts", "/var/secrets/"]),
    ({"tolerations": [{"key": "gpu", "effect": "NoRun"}]}, ["deploy.tolerations.0.effect"]),
    (
        {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "x"}]},
        ["deploy.tolerations.0", "drop value"],
    ),
    ({"node_selector": {"bad key!": "x"}}, ["deploy.node_selector", "example.com/pool"]),
    ({"image_pull_secrets": ["Reg Creds"]}, ["deploy.image_pull_secrets"]),
    (["namespace", "x"], [":5: deploy:", "dictionary"]),
]


@pytest.mark.parametrize(("deploy", "expected"), ERRORS, ids=lambda v: str(v)[:40])
def test_invalid_values_are_reported_with_key_and_fix(
    tmp_path: pathlib.Path, deploy: Any, expected: list[str]
) -> None:
    folder = write_model(tmp_path / "demo", deploy)
    with pytest.raises(ConfigError) as raised:
        load_deploy_target(folder)
    message = str(raised.value)
    assert str(folder / "config.yaml") in message
    for fragment in expected:
        assert fragment in message


def test_every_mistake_is_reported_at_once_with_its_line(tmp_path: pathlib.Path) -> None:
    folder = write_model(tmp_path / "demo")
    (folder / "config.yaml").write_text(
        "name: demo\ndeploy:\n  resources:\n    memory: 4GB\n  timout: 30\n  workers: 0\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_deploy_target(folder)
    lines = str(raised.value).splitlines()
    assert len(lines) == 3
    assert any(":4: deploy.resources.memory" in line for line in lines)
    assert any(":5: unknown key 'deploy.timout'; did you mean 'timeout'?" in line for line in lines)
    assert any(":6: deploy.workers" in line for line in lines)


def test_gpu_on_a_cpu_build_is_refused_with_a_fix(tmp_path: pathlib.Path) -> None:
    folder = write_model(tmp_path / "demo", {"resources": {"gpu": 1}})
    with pytest.raises(ConfigError, match=r"set build\.cuda"):
        load_deploy_target(folder)
    # An explicit base image may be a CUDA one: its GPUs are the user's call.
    folder = write_model(
        tmp_path / "custom",
        {"resources": {"gpu": 1}},
        build={"base_image": "nvcr.io/nvidia/pytorch:24.05-py3"},
    )
    assert container(manifest_of(folder))["resources"]["limits"]["nvidia.com/gpu"] == "1"


# --------------------------------------------------------------------------- transformer split


def write_pair(
    root: pathlib.Path,
    transformer_deploy: dict[str, Any] | None = None,
    predictor_deploy: dict[str, Any] | None = None,
    predictor_build: dict[str, Any] | None = None,
) -> pathlib.Path:
    write_model(
        root / "predictor",
        predictor_deploy,
        name="pair",
        build=predictor_build,
        image="registry.example.com/pair-predictor:1",
    )
    return write_model(
        root / "transformer",
        {"predictor": "../predictor", **(transformer_deploy or {})},
        name="pair",
        source=TRANSFORMER_MODEL,
        image="registry.example.com/pair-transformer:1",
    )


def test_transformer_split_emits_both_components(tmp_path: pathlib.Path) -> None:
    folder = write_pair(
        tmp_path,
        transformer_deploy={"namespace": "team-a", "resources": {"memory": "1Gi"}, "workers": 2},
        predictor_deploy={"max_replicas": 3, "max_load_time": 900},
        predictor_build=GPU_BUILD,
    )
    target = load_deploy_target(folder)
    manifest = manifest_of(folder)
    transformer, predictor = container(manifest, "transformer"), container(manifest)
    assert manifest["metadata"] == {
        "name": "pair",
        "namespace": "team-a",
        "labels": {
            "app.kubernetes.io/name": "pair",
            "app.kubernetes.io/managed-by": "kservehelper",
        },
        "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
    }
    assert transformer["image"] == "registry.example.com/pair-transformer:1"
    assert predictor["image"] == "registry.example.com/pair-predictor:1"
    # KServe appends --model_name/--predictor_host/--http_port to the transformer's args: the
    # command must be explicit, or those args would replace the image's CMD.
    assert transformer["command"] == [*serve_command(target.main.config), "--workers", "2"]
    assert "args" not in transformer
    assert transformer["resources"]["requests"]["memory"] == "1Gi"
    assert "nvidia.com/gpu" not in transformer["resources"]["limits"]
    assert predictor["resources"]["limits"]["nvidia.com/gpu"] == "1"  # its own (CUDA) config
    assert manifest["spec"]["predictor"]["maxReplicas"] == 3
    assert manifest["spec"]["transformer"]["maxReplicas"] == 1
    for part in (transformer, predictor):
        assert part["readinessProbe"]["httpGet"]["path"] == "/v1/models/pair"


def test_predictor_with_another_name_is_served_under_the_services_name(
    tmp_path: pathlib.Path,
) -> None:
    folder = write_pair(tmp_path)
    config = tmp_path / "predictor" / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("pair", "scorer", 1), "utf-8")
    manifest = manifest_of(folder)
    predictor = container(manifest)
    command = predictor["command"]
    assert command[command.index("--name") + 1] == "pair"
    assert predictor["readinessProbe"]["httpGet"]["path"] == "/v1/models/pair"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not-a-transformer", "is not a transformer"),
        ("transformer-alone", "name its predictor's folder in deploy.predictor"),
        ("missing-folder", "is not another model folder"),
        ("namespace-mismatch", "differs from the transformer's"),
        ("nested-predictor", "cannot have its own predictor"),
        ("predictor-without-predict", "defines no predict()"),
    ],
)
def test_transformer_split_mistakes(tmp_path: pathlib.Path, case: str, expected: str) -> None:
    folder = write_pair(tmp_path, {"namespace": "team-a"})
    predictor = tmp_path / "predictor"
    if case == "not-a-transformer":
        (folder / "model.py").write_text(PREDICT_MODEL, encoding="utf-8")
    elif case == "transformer-alone":
        write_model(folder, {}, name="pair", source=TRANSFORMER_MODEL)
    elif case == "missing-folder":
        shutil.rmtree(predictor)
    elif case == "namespace-mismatch":
        write_model(predictor, {"namespace": "team-b"}, name="pair")
    elif case == "nested-predictor":
        write_model(predictor, {"predictor": "../transformer"}, name="pair")
    elif case == "predictor-without-predict":
        write_model(predictor, {}, name="pair", source=TRANSFORMER_MODEL)
    with pytest.raises(ConfigError, match=expected):
        load_deploy_target(folder)


def test_target_name_is_the_model_name(tmp_path: pathlib.Path) -> None:
    target: DeployTarget = load_deploy_target(write_model(tmp_path / "Some_Folder", name=None))
    assert target.name == "some-folder"


# ------------------------------------------------------- what a cluster and its policies accept


def test_pods_meet_the_restricted_pod_security_level(tmp_path: pathlib.Path) -> None:
    manifest = manifest_of(write_model(tmp_path / "demo"))
    predictor = manifest["spec"]["predictor"]
    assert predictor["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsNonRoot": True,
    }
    assert container(manifest)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
    }
    root = load_deploy_target(write_model(tmp_path / "root", build={"user": "root"}))
    assert "runAsNonRoot" not in container(render_inference_service(root))["securityContext"]
    assert any("restricted Pod Security" in warning for warning in root.warnings)


def test_probes_liveness_on_the_live_route(tmp_path: pathlib.Path) -> None:
    main = container(manifest_of(write_model(tmp_path / "demo")))
    assert main["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}
    assert main["readinessProbe"]["httpGet"]["path"] == "/v1/models/demo"
    assert main["startupProbe"]["httpGet"]["path"] == "/v1/models/demo"


def test_queue_drain_and_allow_lists_reach_the_server(tmp_path: pathlib.Path) -> None:
    deploy = {
        "max_queue": 8,
        "shutdown_grace": 90,
        "allowed_inputs": ["https://cdn.example.com/inputs", "s3://bucket/in"],
        "allowed_destinations": ["gs://bucket/out"],
    }
    manifest = manifest_of(write_model(tmp_path / "demo", deploy))
    env = {item["name"]: item["value"] for item in container(manifest)["env"]}
    assert env == {
        "KSERVEHELPER_MAX_QUEUE": "8",
        "KSERVEHELPER_SHUTDOWN_GRACE": "90",
        "KSERVEHELPER_ALLOWED_INPUTS": "https://cdn.example.com/inputs,s3://bucket/in",
        "KSERVEHELPER_ALLOWED_DESTINATIONS": "gs://bucket/out",
    }
    assert manifest["spec"]["predictor"]["terminationGracePeriodSeconds"] == 90 + 15


def test_termination_grace_follows_the_servers_default(tmp_path: pathlib.Path) -> None:
    from kservehelper.settings import Settings

    default = Settings.model_fields["shutdown_grace"].default
    manifest = manifest_of(write_model(tmp_path / "demo"))
    assert manifest["spec"]["predictor"]["terminationGracePeriodSeconds"] > default
    assert "env" not in container(manifest)


def test_read_only_root_file_system_gets_writable_temp_folders(tmp_path: pathlib.Path) -> None:
    deploy = {"read_only_root_filesystem": True, "env": {"KSERVEHELPER_OUTPUT_DIR": "/outputs"}}
    manifest = manifest_of(write_model(tmp_path / "demo", deploy))
    main = container(manifest)
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["volumeMounts"] == [
        {"name": "kservehelper-tmp", "mountPath": "/tmp"},
        {"name": "kservehelper-outputs", "mountPath": "/outputs"},
    ]
    assert manifest["spec"]["predictor"]["volumes"] == [
        {"name": "kservehelper-tmp", "emptyDir": {}},
        {"name": "kservehelper-outputs", "emptyDir": {}},
    ]


def test_secret_volume_names_are_dns_labels(tmp_path: pathlib.Path) -> None:
    mounts = {"gcs.key.v2": "/var/secrets/gcs", "a" * 70: "/var/secrets/long"}
    manifest = manifest_of(write_model(tmp_path / "demo", {"secret_mounts": mounts}))
    names = [volume["name"] for volume in manifest["spec"]["predictor"]["volumes"]]
    assert len(set(names)) == 2
    for name in names:
        assert len(name) <= 63 and "." not in name


def test_our_annotations_and_labels_win(tmp_path: pathlib.Path) -> None:
    deploy = {
        "mode": "raw",
        "annotations": {"serving.kserve.io/deploymentMode": "Serverless", "team": "a"},
        "labels": {"app.kubernetes.io/managed-by": "someone", "team": "vision"},
    }
    target = load_deploy_target(write_model(tmp_path / "demo", deploy))
    metadata = render_inference_service(target)["metadata"]
    assert metadata["annotations"] == {
        "team": "a",
        "serving.kserve.io/deploymentMode": "RawDeployment",
    }
    assert metadata["labels"]["app.kubernetes.io/managed-by"] == "kservehelper"
    assert metadata["labels"]["team"] == "vision"
    assert any("set deploy.mode instead" in warning for warning in target.warnings)


def test_plain_credentials_in_deploy_env_warn(tmp_path: pathlib.Path) -> None:
    deploy = {
        "env": {"HF_TOKEN": "hf_" + "a" * 34, "LOG_LEVEL": "debug", "NOTE": "AKIA" + "B" * 16}
    }
    warnings = load_deploy_target(write_model(tmp_path / "demo", deploy)).warnings
    flagged = [w for w in warnings if "plain value" in w]
    assert len(flagged) == 2
    assert any("deploy.env.HF_TOKEN" in w for w in flagged)
    assert any("deploy.env.NOTE" in w for w in flagged)


def test_long_name_and_namespace_warn_about_host_names(tmp_path: pathlib.Path) -> None:
    folder = write_model(
        tmp_path / "demo", {"namespace": "a-rather-long-team-namespace"}, name="b" * 40
    )
    target = load_deploy_target(folder)
    assert any("longer than a DNS label" in warning for warning in target.warnings)


CLUSTER_ERRORS: list[tuple[Any, list[str]]] = [
    ({"labels": {"team": "x" * 64}}, ["deploy.labels", "at most 63"]),
    ({"labels": {"team": "has space"}}, ["deploy.labels"]),
    ({"node_selector": {"pool": "-bad"}}, ["deploy.node_selector"]),
    ({"labels": {"a" * 64: "x"}}, ["deploy.labels", "name up to 63"]),
    ({"tolerations": [{"key": "bad key!", "operator": "Exists"}]}, ["tolerations.0.key"]),
    ({"tolerations": [{"key": "gpu", "value": "a b"}]}, ["tolerations.0.value"]),
    (
        {"secret_mounts": {"a": "/var/secrets/x", "b": "/var/secrets/x/"}},
        ["both mounted at /var/secrets/x"],
    ),
    ({"secret_mounts": {"a": "/var/../etc"}}, ["deploy.secret_mounts"]),
    ({"secret_mounts": {"a": "/app/keys"}}, ["deploy.secret_mounts"]),
    ({"namespace": "n" * 64}, ["deploy.namespace", "at most 63"]),
    ({"allowed_inputs": ["cdn.example.com"]}, ["deploy.allowed_inputs", "scheme://host"]),
    ({"max_queue": -1}, ["deploy.max_queue"]),
    ({"shutdown_grace": "soon"}, ["deploy.shutdown_grace"]),
]


@pytest.mark.parametrize(("deploy", "expected"), CLUSTER_ERRORS, ids=lambda v: str(v)[:40])
def test_values_a_cluster_would_refuse_are_refused_first(
    tmp_path: pathlib.Path, deploy: Any, expected: list[str]
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_deploy_target(write_model(tmp_path / "demo", deploy))
    for fragment in expected:
        assert fragment in str(raised.value)


def test_every_deploy_error_of_both_parts_is_reported_at_once(tmp_path: pathlib.Path) -> None:
    folder = write_pair(
        tmp_path,
        transformer_deploy={"workers": 0, "labels": {"team": "x" * 70}},
        predictor_deploy={"resources": {"memory": "4GB", "gpu": 2}},
    )
    with pytest.raises(ConfigError) as raised:
        load_deploy_target(folder)
    message = str(raised.value)
    assert "deploy.workers" in message and "deploy.labels" in message  # the transformer's
    assert "deploy.resources.memory" in message and "predictor" in message  # and the predictor's


# ------------------------------------------------------------------- the image that is deployed


def pushed_folder(tmp_path: pathlib.Path, image_id: str | None) -> pathlib.Path:
    folder = write_model(tmp_path / "demo")
    record: dict[str, Any] = {
        "image": "registry.example.com/demo:1.0",
        "digest": DIGEST,
        "reference": f"registry.example.com/demo@{DIGEST}",
    }
    if image_id:
        record["image_id"] = image_id
    (folder / LAST_PUSH_FILE).parent.mkdir()
    (folder / LAST_PUSH_FILE).write_text(json.dumps(record), encoding="utf-8")
    return folder


def test_a_rebuilt_image_is_not_deployed_under_the_old_digest(tmp_path: pathlib.Path) -> None:
    pushed, rebuilt = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    folder = pushed_folder(tmp_path, pushed)
    with pytest.raises(ConfigError) as raised:
        load_deploy_target(folder, local_image_id=lambda image: rebuilt)
    message = str(raised.value)
    assert "rebuilt since" in message and "kservehelper push" in message and "--image" in message
    same = load_deploy_target(folder, local_image_id=lambda image: pushed)
    assert same.main.image == f"registry.example.com/demo@{DIGEST}"
    elsewhere = load_deploy_target(folder, local_image_id=lambda image: None)  # CI: no local
    assert elsewhere.main.image == f"registry.example.com/demo@{DIGEST}"
    chosen = load_deploy_target(folder, image="other/x:1", local_image_id=lambda image: rebuilt)
    assert chosen.main.image == "other/x:1"


def test_a_built_but_never_pushed_image_warns(tmp_path: pathlib.Path) -> None:
    target = load_deploy_target(
        write_model(tmp_path / "demo"), local_image_id=lambda image: "sha256:" + "3" * 64
    )
    assert target.main.image == "registry.example.com/demo:1.0"
    assert any("never pushed" in warning for warning in target.warnings)
