"""Unit tests: finding a model in its folder, and the one rule naming it."""

from __future__ import annotations

import pathlib

import pytest

from kservehelper.config.locate import (
    default_model_name,
    locate_model,
    resolve_model_name,
    served_name,
)
from kservehelper.config.project import load_config
from kservehelper.errors import ConfigError

MODEL = "class Model:\n    def predict(self, x: int = 1) -> dict:\n        return {}\n"


def folder_with(tmp_path: pathlib.Path, source: str, config: str | None = None) -> pathlib.Path:
    folder = tmp_path / "My_Folder v2"
    folder.mkdir()
    (folder / "model.py").write_text(source)
    if config is not None:
        (folder / "config.yaml").write_text(config)
    return folder


def test_default_model_name_is_the_folder_lowercased() -> None:
    assert default_model_name("Blur_Image v2") == "blur-image-v2"
    assert default_model_name("my--model_v2") == "my-model-v2"
    assert default_model_name("___") == "model"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (
            'if __name__ == "__main__":\n    KServeModel.serve("test-rotate-image", Model)\n',
            "test-rotate-image",
        ),
        ('KServeModel.serve(name="by-keyword", model_class=Model)\n', "by-keyword"),
        ('kservehelper.KServeModel.serve("dotted", Model)\n', "dotted"),
        ('KM.serve("aliased", Model)\n', "aliased"),
        ('KServeModel.serve("other", Other)\nKServeModel.serve("mine", Model)\n', "mine"),
        ('KServeModel.serve("first", A)\nKServeModel.serve("second", B)\n', "first"),
        ("KServeModel.serve(NAME, Model)\n", None),  # not a literal: cannot be read
        ('KServeModel.serve(f"x-{1}", Model)\n', None),
        ('something.serve("not-ours", Model)\n', None),
        ("", None),
    ],
)
def test_served_name_reads_the_literal_without_importing(
    tmp_path: pathlib.Path, tail: str, expected: str | None
) -> None:
    source = (
        "raise SystemExit('the entrypoint must never be imported')\n"
        "import kservehelper\n"
        "from kservehelper import KServeModel as KM\n" + MODEL + tail
    )
    folder = folder_with(tmp_path, source)
    assert served_name(folder / "model.py") == expected


def test_served_name_of_an_unreadable_entrypoint_is_none(tmp_path: pathlib.Path) -> None:
    folder = folder_with(tmp_path, "def broken(:\n")
    assert served_name(folder / "model.py") is None
    assert served_name(folder / "missing.py") is None


def test_name_comes_from_config_then_serve_literal_then_folder(tmp_path: pathlib.Path) -> None:
    folder = folder_with(tmp_path, MODEL + 'KServeModel.serve("from-serve", Model)\n')
    entry = folder / "model.py"
    assert resolve_model_name(folder, "from-config", entry) == "from-config"
    assert resolve_model_name(folder, None, entry) == "from-serve"
    assert resolve_model_name(folder) == "my-folder-v2"
    entry.write_text(MODEL)
    assert resolve_model_name(folder, None, entry) == "my-folder-v2"


def test_a_serve_literal_that_is_not_a_valid_name_is_made_one(tmp_path: pathlib.Path) -> None:
    folder = folder_with(tmp_path, MODEL + 'KServeModel.serve("Stable_Diffusion XL", Model)\n')
    assert resolve_model_name(folder, None, folder / "model.py") == "stable-diffusion-xl"


def test_serve_and_predict_name_the_model_by_the_same_rule(tmp_path: pathlib.Path) -> None:
    folder = folder_with(tmp_path, MODEL + 'KServeModel.serve("test-dummy", Model)\n')
    assert locate_model(folder).name == "test-dummy"
    assert locate_model(folder, name="override").name == "override"
    (folder / "config.yaml").write_text("name: configured\n")
    assert locate_model(folder).name == "configured"


def test_the_serve_call_for_the_configured_class_wins(tmp_path: pathlib.Path) -> None:
    source = (
        MODEL
        + "class Other(Model):\n    pass\n"
        + 'KServeModel.serve("model-name", Model)\nKServeModel.serve("other-name", Other)\n'
    )
    folder = folder_with(tmp_path, source, "class: Other\n")
    assert locate_model(folder).name == "other-name"
    assert locate_model(folder, class_name="Model").name == "model-name"


def test_build_and_deploy_config_use_the_same_rule(tmp_path: pathlib.Path) -> None:
    folder = folder_with(
        tmp_path, MODEL + 'KServeModel.serve("test-rotate-image", Model)\n', "build: {}\n"
    )
    assert load_config(folder).name == "test-rotate-image"
    (folder / "config.yaml").write_text("name: explicit\n")
    assert load_config(folder).name == "explicit"
    (folder / "model.py").write_text(MODEL)
    (folder / "config.yaml").write_text("build: {}\n")
    assert load_config(folder).name == "my-folder-v2"


def test_an_entrypoint_outside_the_folder_is_refused_before_it_is_read(
    tmp_path: pathlib.Path,
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text(MODEL + 'KServeModel.serve("leaked", Model)\n')
    folder = folder_with(tmp_path, MODEL, "entrypoint: ../outside.py\n")
    with pytest.raises(ConfigError, match="must be inside"):
        load_config(folder)


def test_locate_model_reports_a_missing_entrypoint(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"model\.py does not exist"):
        locate_model(folder)


def test_the_image_and_the_inference_service_carry_the_serve_call_name(
    tmp_path: pathlib.Path,
) -> None:
    from kservehelper.build.dockerfile import serve_command
    from kservehelper.deploy.manifest import render_inference_service
    from kservehelper.deploy.target import load_deploy_target

    folder = folder_with(
        tmp_path,
        MODEL + 'KServeModel.serve("test-rotate-image", Model)\n',
        "image: 127.0.0.1:5000/rotate:1\n",
    )
    command = serve_command(load_config(folder))
    assert command[command.index("--name") + 1] == "test-rotate-image"
    manifest = render_inference_service(load_deploy_target(folder))
    assert manifest["metadata"]["name"] == "test-rotate-image"
