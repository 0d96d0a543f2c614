"""The seed's Gaussian blur: a base64 image in, a blurred JPEG file out."""

import base64
import io

from PIL import Image, ImageFilter

from kservehelper import KServeModel
from kservehelper.types import Input, Path


class Model:
    def load(self):
        pass

    def predict(
        self,
        image: str = Input(description="Base64 encoded image", default=""),
        radius: float = Input(description="Standard deviation of the Gaussian kernel", default=2),
    ) -> Path:
        if image == "":
            raise ValueError("The input image is not set")
        try:
            input_image = Image.open(io.BytesIO(base64.b64decode(image)))
            input_image.load()
        except (ValueError, OSError):  # ValueError: a 400 the client can act on
            raise ValueError("The input image is not a base64-encoded image file") from None
        output_image = input_image.filter(ImageFilter.GaussianBlur(radius))
        output_path = KServeModel.generate_filepath("image.jpg")
        output_image.convert("RGB").save(output_path)
        return Path(output_path)


if __name__ == "__main__":
    KServeModel.serve("blur-image", Model)
