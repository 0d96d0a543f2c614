"""The playground's other controls: a file input, a secret, a list of numbers; image and audio
outputs. The outputs come back as data: URIs (no destination is set), the page shows them."""

from __future__ import annotations

import wave

from PIL import Image, ImageOps

from kservehelper import KServeModel
from kservehelper.types import Input, Path, Secret


class Model:
    def predict(
        self,
        photo: Path = Input(description="Any image"),
        token: Secret = Input(description="Must be 'open-sesame'"),
        sizes: list[int] = Input(description="Thumbnail sizes", default=[8], ge=1, le=64),
        mode: str = Input(description="What to do", default="gray", choices=["gray", "flip"]),
    ) -> list[Path]:
        if token.get_secret_value() != "open-sesame":
            raise ValueError("wrong token")
        image = Image.open(str(photo)).convert("RGB")
        image = ImageOps.grayscale(image) if mode == "gray" else ImageOps.flip(image)
        outputs = []
        for size in sizes:
            path = KServeModel.generate_filepath(f"thumb-{size}.png")
            image.resize((size, size)).save(path)
            outputs.append(Path(path))
        beep = KServeModel.generate_filepath("beep.wav")
        with wave.open(str(beep), "wb") as sound:
            sound.setnchannels(1)
            sound.setsampwidth(1)
            sound.setframerate(8000)
            sound.writeframes(bytes([128, 200, 128, 56]) * 400)
        outputs.append(Path(beep))
        return outputs
