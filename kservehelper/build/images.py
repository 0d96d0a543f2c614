"""Base-image tables and their resolution: python-slim (CPU), nvidia/cuda, NGC PyTorch.

Adding a CUDA release or an NGC release is one table row. Unsupported combinations raise
:class:`ConfigError` listing what is supported; ``build.base_image`` bypasses the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kservehelper.errors import ConfigError

if TYPE_CHECKING:
    from kservehelper.config.project import BuildConfig

DEFAULT_PYTHON = "3.11"

# Python versions kservehelper (and kserve 0.21) run on. CPU images are the official
# `python:X.Y-slim` images (Debian, Python in /usr/local).
CPU_PYTHON_VERSIONS: tuple[str, ...] = ("3.10", "3.11", "3.12", "3.13")

# nvidia/cuda images carry no Python: it is installed with uv from python-build-standalone,
# pinned to a patch release (and uv pinned to a release) so rebuilds get the same interpreter.
# Sources: https://github.com/astral-sh/uv/releases (uv 0.5.11, its `ghcr.io/astral-sh/uv`
# image) and https://github.com/astral-sh/python-build-standalone/releases (20241219).
UV_IMAGE = "ghcr.io/astral-sh/uv:0.5.11"
PYTHON_PATCH_RELEASES: dict[str, str] = {
    "3.10": "3.10.16",
    "3.11": "3.11.11",
    "3.12": "3.12.8",
    "3.13": "3.13.1",
}


@dataclass(frozen=True)
class CudaRelease:
    """One CUDA MAJOR.MINOR and the nvidia/cuda tag parts that exist for it."""

    full_version: str  # the newest patch release with images, e.g. "12.4.1"
    cudnn_tag: str  # how the tag spells cuDNN: "cudnn8", "cudnn9", or "cudnn" (cuDNN 9)
    ubuntu: str = "22.04"


# Tags: https://hub.docker.com/r/nvidia/cuda/tags and NVIDIA's supported-tags list
# (https://gitlab.com/nvidia/container-images/cuda/blob/master/doc/supported-tags.md);
# cross-checked with the tag table Cog keeps (replicate/cog pkg/config/cuda_compatibility.json).
# From 12.4 on the cuDNN tags drop the major version ("-cudnn-" is cuDNN 9); 12.3 is
# "-cudnn9-"; up to 12.2 "-cudnn8-". cuDNN is published for runtime and devel, not base.
CUDA_RELEASES: dict[str, CudaRelease] = {
    "11.7": CudaRelease("11.7.1", "cudnn8"),
    "11.8": CudaRelease("11.8.0", "cudnn8"),
    "12.1": CudaRelease("12.1.1", "cudnn8"),
    "12.2": CudaRelease("12.2.2", "cudnn8"),
    "12.3": CudaRelease("12.3.2", "cudnn9"),
    "12.4": CudaRelease("12.4.1", "cudnn"),
    "12.5": CudaRelease("12.5.1", "cudnn"),
    "12.6": CudaRelease("12.6.3", "cudnn"),
    "12.8": CudaRelease("12.8.1", "cudnn"),
    "12.9": CudaRelease("12.9.1", "cudnn"),
    "13.0": CudaRelease("13.0.0", "cudnn"),
}

# NGC PyTorch releases, keyed by (CUDA MAJOR.MINOR, Python MAJOR.MINOR): the newest release
# on that CUDA minor. Source: NVIDIA's PyTorch release notes, one page a release
# (https://docs.nvidia.com/deeplearning/frameworks/pytorch-release-notes/rel-YY-MM.html) and
# the Frameworks Support Matrix (https://docs.nvidia.com/deeplearning/frameworks/support-matrix/).
# 23.06 moved to Ubuntu 22.04 + Python 3.10; 25.01 to Ubuntu 24.04 + Python 3.12. Releases
# on Python 3.8 (22.08-23.05) are left out: kservehelper needs Python 3.10 or newer.
NGC_PYTORCH_RELEASES: dict[tuple[str, str], str] = {
    ("12.1", "3.10"): "23.07",  # CUDA 12.1.1
    ("12.2", "3.10"): "23.10",  # CUDA 12.2.2
    ("12.3", "3.10"): "24.01",  # CUDA 12.3.2
    ("12.4", "3.10"): "24.04",  # CUDA 12.4.1
    ("12.5", "3.10"): "24.07",  # CUDA 12.5.1
    ("12.6", "3.10"): "24.10",  # CUDA 12.6.2
    ("12.8", "3.12"): "25.01",  # CUDA 12.8.0
    ("12.9", "3.12"): "25.06",  # CUDA 12.9.1
}

BaseFamily = Literal["python", "cuda", "ngc", "custom"]


@dataclass(frozen=True)
class BaseImage:
    """The resolved base image and how Python gets into it."""

    image: str
    family: BaseFamily
    python_version: str
    # True when the base has no Python: the Dockerfile installs it (pinned, with uv).
    install_python: bool = False
    python_patch: str | None = None


def supported_cuda_versions() -> list[str]:
    """CUDA MAJOR.MINOR versions with nvidia/cuda images in the table."""
    return list(CUDA_RELEASES)


def cuda_image(cuda: str, image_type: str, cudnn: bool) -> str:
    """The nvidia/cuda tag for a CUDA MAJOR.MINOR, flavour and cuDNN choice."""
    release = CUDA_RELEASES[cuda]
    parts = [release.full_version]
    if cudnn:
        parts.append(release.cudnn_tag)
    parts += [image_type, f"ubuntu{release.ubuntu}"]
    return "nvidia/cuda:" + "-".join(parts)


def resolve_base_image(build: BuildConfig) -> BaseImage:
    """Choose the base image for a ``build:`` section; raise ConfigError if unsupported."""
    python = build.python_version
    if build.base_image:
        return BaseImage(build.base_image, "custom", python or DEFAULT_PYTHON)
    if build.ngc:
        return _resolve_ngc(build.cuda, python)
    if build.cuda is None:
        if build.cudnn or build.cuda_image_type:
            raise ConfigError(
                'build.cudnn and build.cuda_image_type need build.cuda, e.g. cuda: "12.4"'
            )
        python = python or DEFAULT_PYTHON
        if python not in CPU_PYTHON_VERSIONS:
            raise ConfigError(
                f"build.python_version '{python}' is not supported; supported: "
                f"{', '.join(CPU_PYTHON_VERSIONS)}"
            )
        return BaseImage(f"python:{python}-slim", "python", python)
    if build.cuda not in CUDA_RELEASES:
        raise ConfigError(
            f"build.cuda '{build.cuda}' is not supported; supported: "
            f"{', '.join(CUDA_RELEASES)} (or set build.base_image)"
        )
    python = python or DEFAULT_PYTHON
    if python not in PYTHON_PATCH_RELEASES:
        raise ConfigError(
            f"build.python_version '{python}' is not supported with CUDA; supported: "
            f"{', '.join(PYTHON_PATCH_RELEASES)}"
        )
    image_type = build.cuda_image_type or ("runtime" if build.cudnn else "base")
    if build.cudnn and image_type == "base":
        raise ConfigError(
            "build.cudnn needs cuda_image_type 'runtime' or 'devel' (NVIDIA publishes no "
            "base image with cuDNN)"
        )
    return BaseImage(
        cuda_image(build.cuda, image_type, build.cudnn),
        "cuda",
        python,
        install_python=True,
        python_patch=PYTHON_PATCH_RELEASES[python],
    )


def _resolve_ngc(cuda: str | None, python: str | None) -> BaseImage:
    supported = ", ".join(f"cuda {c} + python {p}" for c, p in NGC_PYTORCH_RELEASES)
    if cuda is None:
        raise ConfigError(f"build.ngc needs build.cuda; supported: {supported}")
    choices = {p: tag for (c, p), tag in NGC_PYTORCH_RELEASES.items() if c == cuda}
    if not choices:
        raise ConfigError(f"build.cuda '{cuda}' has no NGC PyTorch image; supported: {supported}")
    if python is None:
        python = sorted(choices)[-1]
    if python not in choices:
        raise ConfigError(
            f"NGC PyTorch for CUDA {cuda} ships Python {', '.join(sorted(choices))}, not "
            f"'{python}'; set build.python_version to one of those (supported: {supported})"
        )
    return BaseImage(f"nvcr.io/nvidia/pytorch:{choices[python]}-py3", "ngc", python)
