"""Every kind of input constraint kservehelper supports, in one small model."""

from __future__ import annotations

from kservehelper import KServeModel
from kservehelper.types import Input


class Model:
    def load(self) -> None:
        self.greeting = "Hello"

    def predict(
        self,
        name: str = Input(description="Who to greet", min_length=1, max_length=40),
        times: int = Input(description="How many greetings", default=1, ge=1, le=5),
        excitement: float = Input(description="0 is calm, 1 is thrilled", default=0.5, ge=0, le=1),
        language: str = Input(
            description="Greeting language", default="en", choices=["en", "fr", "de"]
        ),
        code: str = Input(
            description="A ticket code like AB-123", default="AA-000", regex=r"[A-Z]{2}-\d{3}"
        ),
        tags: list[str] = Input(description="Labels to echo back", default=[], max_items=3),
        shout: bool = Input(description="Upper-case the greeting", default=False),
        note: str | None = Input(description="An optional note", default=None),
    ) -> dict:
        word = {"en": self.greeting, "fr": "Bonjour", "de": "Hallo"}[language]
        mark = "!" if excitement >= 0.5 else "."
        text = " ".join([f"{word}, {name}{mark}"] * times)
        if shout:
            text = text.upper()
        return {"greeting": text, "code": code, "tags": tags, "note": note}


if __name__ == "__main__":
    KServeModel.serve("hello", Model)
