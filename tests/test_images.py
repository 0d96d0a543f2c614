"""Base-image tables and their resolution."""

from __future__ import annotations

import pytest

from kservehelper.build.images import (
    CUDA_RELEASES,
    NGC_PYTORCH_RELEASES,
    cuda_image,
    resolve_base_image,
)
from kservehelper.config.project import BuildConfig
from kservehelper.errors import ConfigError


def test_cpu_default_is_python_slim() -> None:
    base = resolve_base_image(BuildConfig())
    assert base.image == "python:3.11-slim" and base.family == "python"
    assert not base.provision_python


def test_cpu_python_version() -> None:
    assert resolve_base_image(BuildConfig(python_version="3.12")).image == "python:3.12-slim"


def test_cuda_base_provisions_python() -> None:
    base = resolve_base_image(BuildConfig(cuda="12.4", python_version="3.11"))
    assert base.image == "nvidia/cuda:12.4.1-base-ubuntu22.04"
    assert base.provision_python and base.python_version == "3.11"
    assert base.python_patch == "3.11.11"  # only if the distro does not ship 3.11
    assert base.warnings == ()


def test_cuda_without_python_version_takes_the_distros() -> None:
    base = resolve_base_image(BuildConfig(cuda="13.0"))
    assert base.image == "nvidia/cuda:13.0.2-base-ubuntu24.04"
    assert base.python_version is None and base.python_patch is None


def test_end_of_life_cuda_warns_naming_a_supported_one() -> None:
    (warning,) = resolve_base_image(BuildConfig(cuda="11.7", python_version="3.10")).warnings
    assert "end of life" in warning and 'cuda: "12.0"' in warning
    assert "support-policy" in warning


def test_newest_patch_per_cuda_minor() -> None:
    for minor, release in CUDA_RELEASES.items():
        assert release.full_version.startswith(minor + ".")
    assert CUDA_RELEASES["12.9"].full_version == "12.9.1"


@pytest.mark.parametrize(
    ("cuda", "expected"),
    [
        ("11.8", "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"),
        ("12.3", "nvidia/cuda:12.3.2-cudnn9-runtime-ubuntu22.04"),
        ("12.4", "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"),
    ],
)
def test_cudnn_tags_follow_nvidias_naming(cuda: str, expected: str) -> None:
    assert resolve_base_image(BuildConfig(cuda=cuda, cudnn=True)).image == expected


def test_devel_flavour() -> None:
    assert cuda_image("12.1", "devel", False) == "nvidia/cuda:12.1.1-devel-ubuntu22.04"


def test_ngc_picks_release_and_python() -> None:
    base = resolve_base_image(BuildConfig(cuda="12.1", ngc=True))
    assert base.image == "nvcr.io/nvidia/pytorch:23.07-py3" and base.python_version == "3.10"


def test_ngc_wrong_python_lists_supported() -> None:
    with pytest.raises(ConfigError, match=r"3\.10") as caught:
        resolve_base_image(BuildConfig(cuda="12.4", ngc=True, python_version="3.12"))
    assert "cuda 12.9 + python 3.12" in str(caught.value)


def test_ngc_needs_cuda() -> None:
    with pytest.raises(ConfigError, match=r"needs build\.cuda"):
        resolve_base_image(BuildConfig(ngc=True))


def test_base_image_bypasses_tables() -> None:
    base = resolve_base_image(BuildConfig(base_image="my/base:1", cuda="9.0", ngc=True))
    assert base.image == "my/base:1" and base.family == "custom"
    assert base.provision_python  # the Dockerfile uses its Python, or installs one


def test_every_ngc_row_has_a_cuda_row() -> None:
    assert {cuda for cuda, _ in NGC_PYTORCH_RELEASES} <= set(CUDA_RELEASES)
