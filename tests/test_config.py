"""config.yaml: schema, file checks and the messages users see (no Docker)."""

from __future__ import annotations

import json
import pathlib

import jsonschema
import pytest

from kservehelper.config.checks import check_model_name
from kservehelper.config.locate import default_model_name
from kservehelper.config.project import config_json_schema, load_config
from kservehelper.errors import ConfigError

MODEL_PY = "import torch  # never imported by the checks\n\n\nclass Model:\n    pass\n"


def make_model(tmp_path: pathlib.Path, config: str, model: str = MODEL_PY) -> pathlib.Path:
    folder = tmp_path / "My_Model"
    folder.mkdir(exist_ok=True)
    (folder / "model.py").write_text(model)
    (folder / "config.yaml").write_text(config)
    return folder


def error_of(folder: pathlib.Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(folder)
    return str(caught.value)


def test_seed_config_loads_with_defaults(tmp_path: pathlib.Path) -> None:
    folder = make_model(
        tmp_path,
        'image: "127.0.0.1:5000/blur:1"\nbuild:\n  python_version: "3.11"\n'
        '  python_packages: ["kservehelper>=1.1.0", "Pillow"]\n',
    )
    config = load_config(folder)
    assert config.image == "127.0.0.1:5000/blur:1"
    assert config.entrypoint == "model.py"
    assert config.name == "my-model"
    assert config.class_name == "Model"
    assert config.build.python_version == "3.11"
    assert config.build.cuda is None and config.build.ngc is False
    assert config.deploy == {}
    assert config.model_dir == folder.resolve()


def test_deploy_is_an_opaque_mapping(tmp_path: pathlib.Path) -> None:
    folder = make_model(tmp_path, "deploy:\n  replicas: 2\n  anything: {nested: true}\n")
    assert load_config(folder).deploy == {"replicas": 2, "anything": {"nested": True}}


def test_unknown_key_suggests_the_close_one_with_its_line(tmp_path: pathlib.Path) -> None:
    folder = make_model(tmp_path, 'image: "a:1"\nbuild:\n  python_verison: "3.11"\n')
    message = error_of(folder)
    assert "config.yaml:3" in message
    assert "build.python_verison" in message
    assert "did you mean 'python_version'" in message


def test_unknown_top_level_key(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, "entry_point: model.py\n"))
    assert "config.yaml:1" in message and "did you mean 'entrypoint'" in message


def test_wrong_type_names_the_key(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, "build:\n  system_packages: git\n"))
    assert "build.system_packages" in message and "config.yaml:2" in message


def test_unquoted_python_version_explains_yaml_float(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, "build:\n  python_version: 3.10\n"))
    assert "quote" in message and "3.1" in message


def test_unsupported_python_lists_supported(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, 'build:\n  python_version: "3.7"\n'))
    assert "3.7" in message and "3.11" in message and "supported" in message


def test_unsupported_cuda_lists_supported(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, 'build:\n  cuda: "10.2"\n'))
    assert "config.yaml:2" in message and "12.4" in message and "supported" in message


def test_yaml_syntax_error_has_line_number(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, "build:\n  python_version: '3.11\n  cuda: [\n"))
    assert "invalid YAML" in message
    assert "config.yaml:" in message.split("invalid YAML")[0]


def test_missing_requirements_file(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, "build:\n  python_requirements: [reqs.txt]\n"))
    assert "reqs.txt" in message and "does not exist" in message and "config.yaml:2" in message


def test_missing_wheel(tmp_path: pathlib.Path) -> None:
    folder = make_model(tmp_path, "build:\n  python_packages: [lavis-1.1.0-py3-none-any.whl]\n")
    assert "lavis-1.1.0-py3-none-any.whl" in error_of(folder)


def test_missing_entrypoint(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, "entrypoint: predict.py\n"))
    assert "predict.py" in message and "does not exist" in message


def test_entrypoint_without_the_class_is_found_without_importing(tmp_path: pathlib.Path) -> None:
    folder = make_model(tmp_path, "class: Predictor\n", model=MODEL_PY)
    message = error_of(folder)
    assert "Predictor" in message and "it defines Model" in message


def test_invalid_image_reference(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, 'image: "<DOCKER-IMAGE-NAME:TAG>"\n'))
    assert "not a valid image reference" in message
    assert "lowercase" in error_of(make_model(tmp_path, 'image: "Registry/Blur:1"\n'))


@pytest.mark.parametrize(
    "image",
    ["blur", "blur:1.0", "127.0.0.1:5000/a/b:latest", "ghcr.io/org/model@sha256:" + "a" * 64],
)
def test_valid_image_references(tmp_path: pathlib.Path, image: str) -> None:
    assert load_config(make_model(tmp_path, f'image: "{image}"\n')).image == image


def test_missing_config_file_says_how_to_create_one(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="kservehelper init"):
        load_config(tmp_path)


def test_cudnn_needs_runtime_or_devel(tmp_path: pathlib.Path) -> None:
    config = 'build:\n  cuda: "12.4"\n  cudnn: true\n  cuda_image_type: base\n'
    assert "runtime" in error_of(make_model(tmp_path, config))


def test_default_model_name() -> None:
    assert default_model_name("Blur_Image v2") == "blur-image-v2"
    assert default_model_name("___") == "model"
    assert default_model_name("2024-model") == "m-2024-model"  # KServe: a letter first
    long = default_model_name("x" * 80)
    assert len(long) == 45 and long == "x" * 45


@pytest.mark.parametrize("folder", ["2fast", "a" * 70, "Über_Model", "-x-", "9"])
def test_default_model_name_is_always_a_valid_kserve_name(folder: str) -> None:
    name = default_model_name(folder)
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    ("name", "fix"), [("2fast", "m-2fast"), ("a" * 46, "a" * 45), ("a-", "a"), ("A", "a")]
)
def test_model_name_follows_kserves_rule(tmp_path: pathlib.Path, name: str, fix: str) -> None:
    message = error_of(make_model(tmp_path, f'name: "{name}"\n'))
    assert "config.yaml:1: name:" in message and f"e.g. '{fix}'" in message


# ----------------------------------------------------------- values that reach the Dockerfile

HOSTILE: list[tuple[str, str]] = [
    ('name: "demo\\n"', "control character"),
    ('image: "a:1\\n"', "control character"),
    ('entrypoint: "model.py\\n"', "control character"),
    ('class: "Model\\n"', "not a Python class name"),
    ('build: {python_version: "3.11\\n"}', "MAJOR.MINOR"),
    ('build: {cuda: "12.4\\n"}', "MAJOR.MINOR"),
    ('build: {base_image: "debian:12\\nRUN id"}', "control character"),
    ('build: {base_image: "Debian:12 AS x"}', "not a valid image reference"),
    ('build: {user: "kserve\\n"}', "not a valid user name"),
    ('build: {system_packages: ["git; id"]}', "not a Debian/Ubuntu package name"),
    ('build: {system_packages: ["git\\n"]}', "control character"),
    ('build: {python_packages: ["numpy\\rRUN x"]}', "control character"),
    ('build: {python_packages: ["--index-url=http://x"]}', "put options such as"),
    ('build: {python_requirements: ["req.txt\\u0000"]}', "control character"),
    ('build: {commands: ["echo a\\u001b[31m"]}', "control character"),
    ('build: {commands: ["echo \\r"]}', "control character"),
    ('build: {commands: ["  "]}', "empty command"),
    ('build: {env: {"A B": "x"}}', "not a valid environment variable name"),
    ('build: {env: {"A": "x\\u0007"}}', "control character"),
]


@pytest.mark.parametrize(("line", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_every_value_is_checked_in_full(tmp_path: pathlib.Path, line: str, expected: str) -> None:
    message = error_of(make_model(tmp_path, line + "\n"))
    assert expected in message and "config.yaml:1" in message


def test_apt_package_versions_and_multiline_values_are_accepted(tmp_path: pathlib.Path) -> None:
    config = load_config(
        make_model(
            tmp_path,
            "build:\n  system_packages: [git=1:2.39.5-0+deb12u2, libgl1, 'g++', libc6:amd64]\n"
            '  commands: ["echo one\\n\\techo two"]\n'
            "  env: {MULTI: \"a\\nb\", TOKEN_LIMIT: 4096, MAX_TOKENS: '12'}\n",
        )
    )
    assert config.build.commands == ["echo one\n\techo two"]
    assert config.build.env == {"MULTI": "a\nb", "TOKEN_LIMIT": "4096", "MAX_TOKENS": "12"}


@pytest.mark.parametrize(
    "name", ["HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY", "DB_PASSWORD", "GH_AUTH_TOKEN"]
)
def test_secret_looking_build_env_is_refused(tmp_path: pathlib.Path, name: str) -> None:
    message = error_of(make_model(tmp_path, f"build:\n  env: {{{name}: abc123}}\n"))
    assert "config.yaml:2" in message and "looks like a credential" in message
    assert "deploy.env" in message and "{secret: SECRET-NAME, key: KEY}" in message


def test_tokenizer_settings_are_not_secrets(tmp_path: pathlib.Path) -> None:
    text = "build:\n  env: {TOKENIZERS_PARALLELISM: 'false', HF_HOME: /models}\n"
    assert load_config(make_model(tmp_path, text)).build.env["HF_HOME"] == "/models"


def test_distro_python_packages_are_refused_on_python_images(tmp_path: pathlib.Path) -> None:
    message = error_of(make_model(tmp_path, "build:\n  system_packages: [git, python3-opencv]\n"))
    assert "config.yaml:2" in message and "python3-opencv" in message
    assert "opencv-python-headless" in message and "build.cuda" in message
    # On CUDA images the model runs on the distro's Python: checked at build time instead.
    cuda = 'build:\n  cuda: "12.4"\n  system_packages: [python3-opencv]\n'
    assert load_config(make_model(tmp_path, cuda)).build.system_packages == ["python3-opencv"]


def test_end_of_life_cuda_is_a_warning_with_its_line(tmp_path: pathlib.Path) -> None:
    config = load_config(make_model(tmp_path, 'build:\n  python_version: "3.10"\n  cuda: "11.7"\n'))
    (warning,) = config.warnings
    assert "config.yaml:3: build.cuda 11.7 has reached end of life" in warning


def test_nested_requirement_files_are_checked(tmp_path: pathlib.Path) -> None:
    folder = make_model(tmp_path, "build:\n  python_requirements: [requirements.txt]\n")
    (folder / "requirements.txt").write_text("six\n-r extra/more.txt  # comment\n")
    message = error_of(folder)
    assert "requirements.txt:2" in message and "extra/more.txt" in message
    assert "does not exist" in message
    (folder / "extra").mkdir()
    (folder / "extra" / "more.txt").write_text("--constraint ../../outside.txt\n")
    message = error_of(folder)
    assert "more.txt:1" in message and "outside the model folder" in message
    (folder / "extra" / "more.txt").write_text("-c ../pins.txt\n")
    (folder / "pins.txt").write_text("six==1.16.0\n")
    assert load_config(folder).build.python_requirements == ["requirements.txt"]


def test_label_has_no_deploy_section_and_no_env_values(tmp_path: pathlib.Path) -> None:
    folder = make_model(
        tmp_path,
        "build:\n  env: {HF_HOME: /models}\ndeploy:\n  env: {UPSTREAM_PASSWORD: hunter2}\n",
    )
    label = json.loads(load_config(folder).to_label())
    assert "deploy" not in label and label["build"]["env"] == ["HF_HOME"]
    assert "hunter2" not in json.dumps(label) and "/models" not in json.dumps(label)


def test_json_schema_validates_configs() -> None:
    schema = config_json_schema()
    json.dumps(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    good = {"image": "a:1", "class": "Model", "build": {"python_version": "3.11", "cuda": "12.4"}}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"build": {"pyton_version": "3.11"}}, schema)
