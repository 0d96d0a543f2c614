"""config.yaml: schema, file checks and the messages users see (no Docker)."""

from __future__ import annotations

import json
import pathlib

import jsonschema
import pytest

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


def test_json_schema_validates_configs() -> None:
    schema = config_json_schema()
    json.dumps(schema)
    jsonschema.Draft202012Validator.check_schema(schema)
    good = {"image": "a:1", "class": "Model", "build": {"python_version": "3.11", "cuda": "12.4"}}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"build": {"pyton_version": "3.11"}}, schema)
