"""Base-image tables and their resolution: python-slim (CPU), nvidia/cuda, NGC PyTorch.

Adding a CUDA release or an NGC release is one table row. Nothing here downloads anything:
the Dockerfile (templates/Dockerfile.j2, scripts/python.sh) does, from the base image's
registry, PyPI and the distro's apt repositories only. Unsupported combinations raise
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

# nvidia/cuda images carry no Python. The Dockerfile takes the distro's own Python from apt
# when the distro ships the version asked for (detected at build time: Ubuntu 22.04 ships 3.10
# and 3.11, 24.04 ships 3.12); otherwise uv (from PyPI) installs a python-build-standalone
# release of this patch version, downloaded from GitHub or from $UV_PYTHON_INSTALL_MIRROR.
PYTHON_PATCH_RELEASES: dict[str, str] = {
    "3.10": "3.10.16",
    "3.11": "3.11.11",
    "3.12": "3.12.8",
    "3.13": "3.13.1",
}
#: The Python each Ubuntu release ships as its python3 (what `build.cuda` uses by default).
UBUNTU_PYTHON: dict[str, str] = {"22.04": "3.10", "24.04": "3.12"}
#: NVIDIA's container support policy: tags of a CUDA release whose driver branch reached end of
#: life are deleted from Docker Hub six months later.
CUDA_SUPPORT_POLICY = (
    "https://gitlab.com/nvidia/container-images/cuda/blob/master/doc/support-policy.md"
)


@dataclass(frozen=True)
class CudaRelease:
    """One CUDA MAJOR.MINOR and the nvidia/cuda tag parts that exist for it."""

    full_version: str  # the newest patch release with images, e.g. "12.4.1"
    cudnn_tag: str  # how the tag spells cuDNN: "cudnn8", "cudnn9", or "cudnn" (cuDNN 9)
    ubuntu: str = "22.04"
    end_of_life: bool = False  # NVIDIA deleted (or is deleting) its image tags


# Tags: https://hub.docker.com/r/nvidia/cuda/tags and NVIDIA's supported-tags list
# (https://gitlab.com/nvidia/container-images/cuda/blob/master/doc/supported-tags.md);
# cross-checked with the tag table Cog keeps (replicate/cog pkg/config/cuda_compatibility.json).
# From 12.4 on the cuDNN tags drop the major version ("-cudnn-" is cuDNN 9); 12.3 is
# "-cudnn9-"; up to 12.2 "-cudnn8-". cuDNN is published for runtime and devel, not base.
# CUDA 13 images are used on Ubuntu 24.04 (13.2 is published for 24.04 only).
# End of life: 11.7 tags were deleted in 2023; CUDA 11's drivers reached end of life in 2024 and
# its last images (11.8) go a month after CUDA 13 (NVIDIA keeps the two newest majors).
CUDA_RELEASES: dict[str, CudaRelease] = {
    "11.7": CudaRelease("11.7.1", "cudnn8", end_of_life=True),
    "11.8": CudaRelease("11.8.0", "cudnn8", end_of_life=True),
    "12.0": CudaRelease("12.0.1", "cudnn8"),
    "12.1": CudaRelease("12.1.1", "cudnn8"),
    "12.2": CudaRelease("12.2.2", "cudnn8"),
    "12.3": CudaRelease("12.3.2", "cudnn9"),
    "12.4": CudaRelease("12.4.1", "cudnn"),
    "12.5": CudaRelease("12.5.1", "cudnn"),
    "12.6": CudaRelease("12.6.3", "cudnn"),
    "12.8": CudaRelease("12.8.1", "cudnn"),
    "12.9": CudaRelease("12.9.1", "cudnn"),
    "13.0": CudaRelease("13.0.2", "cudnn", ubuntu="24.04"),
    "13.1": CudaRelease("13.1.2", "cudnn", ubuntu="24.04"),
    "13.2": CudaRelease("13.2.1", "cudnn", ubuntu="24.04"),
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
    """The resolved base image and how Python gets into it.

    ``python_version`` is the version asked for; None means "the base image's own" (a custom
    base image's Python, or a CUDA image's distro Python).
    """

    image: str
    family: BaseFamily
    python_version: str | None
    #: The Dockerfile provides Python when the base has none (cuda always; custom when needed).
    provision_python: bool = False
    python_patch: str | None = None
    warnings: tuple[str, ...] = ()


def supported_cuda_versions() -> list[str]:
    """CUDA MAJOR.MINOR versions with nvidia/cuda images in the table (end of life included)."""
    return list(CUDA_RELEASES)


def cuda_image(cuda: str, image_type: str, cudnn: bool) -> str:
    """The nvidia/cuda tag for a CUDA MAJOR.MINOR, flavour and cuDNN choice."""
    release = CUDA_RELEASES[cuda]
    parts = [release.full_version]
    if cudnn:
        parts.append(release.cudnn_tag)
    parts += [image_type, f"ubuntu{release.ubuntu}"]
    return "nvidia/cuda:" + "-".join(parts)


def _end_of_life_warning(cuda: str) -> tuple[str, ...]:
    if not CUDA_RELEASES[cuda].end_of_life:
        return ()
    newer = [c for c, r in CUDA_RELEASES.items() if not r.end_of_life]
    return (
        f"build.cuda {cuda} has reached end of life: NVIDIA deletes its nvidia/cuda tags "
        f"({CUDA_SUPPORT_POLICY}), so the build may fail to pull its base image; use a "
        f'supported one, e.g. cuda: "{newer[0]}" (or "{newer[-1]}", the newest)',
    )


def resolve_base_image(build: BuildConfig) -> BaseImage:
    """Choose the base image for a ``build:`` section; raise ConfigError if unsupported."""
    python = build.python_version
    if build.base_image:
        return BaseImage(
            build.base_image,
            "custom",
            python,
            provision_python=True,
            python_patch=PYTHON_PATCH_RELEASES.get(python or ""),
        )
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
    if python is not None and python not in PYTHON_PATCH_RELEASES:
        raise ConfigError(
            f"build.python_version '{python}' is not supported with CUDA; supported: "
            f"{', '.join(PYTHON_PATCH_RELEASES)} (or omit it for the distro's Python)"
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
        provision_python=True,
        python_patch=PYTHON_PATCH_RELEASES.get(python or ""),
        warnings=_end_of_life_warning(build.cuda),
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
