"""``kservehelper init``: a new model folder that builds and serves as it is."""

from __future__ import annotations

import pathlib

from kservehelper.build.context import default_dockerignore
from kservehelper.config.locate import default_model_name
from kservehelper.errors import ConfigError

MODEL_PY = '''\
"""A kservehelper model: load() runs once, predict() for every request."""

from kservehelper.types import Input


class Model:
    def load(self):
        # Load weights here (once, when the server starts).
        self.greeting = "Hello"

    def predict(
        self,
        name: str = Input(description="Who to greet", default="world"),
        times: int = Input(description="How many times", default=1, ge=1, le=10),
    ) -> str:
        return " ".join([f"{self.greeting}, {name}!"] * times)
'''

CONFIG_YAML = """\
# kservehelper config: `kservehelper build .`, `kservehelper push .`
# Schema for editors: `kservehelper config-schema > config.schema.json`.
name: {name}
class: Model
entrypoint: model.py
image: "{name}:latest"  # e.g. registry.example.com/{name}:1.0
build:
  python_version: "3.11"
  # cuda: "12.4"          # a GPU image (nvidia/cuda); add ngc: true for NGC PyTorch
  system_packages: []
  python_requirements:
    - requirements.txt
  python_packages: []
"""

REQUIREMENTS_TXT = "# The model's Python dependencies, one requirement a line.\n"


def scaffold_model_folder(model_dir: pathlib.Path, *, force: bool = False) -> list[pathlib.Path]:
    """Write model.py, config.yaml, requirements.txt and .dockerignore; return their paths.

    Refuses to overwrite an existing file unless ``force``.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    name = default_model_name(model_dir)
    files = {
        "model.py": MODEL_PY,
        "config.yaml": CONFIG_YAML.format(name=name),
        "requirements.txt": REQUIREMENTS_TXT,
        ".dockerignore": default_dockerignore(),
    }
    existing = [n for n in files if (model_dir / n).exists()]
    if existing and not force:
        raise ConfigError(
            f"{model_dir}: {', '.join(existing)} already exist; use --force to overwrite"
        )
    written = []
    for file_name, text in files.items():
        path = model_dir / file_name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
