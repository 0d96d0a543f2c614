"""Unit tests for the seed API types, and kservehelper 2.0's names."""

from __future__ import annotations

import collections.abc
import pathlib
import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest

import kservehelper.types
from kservehelper import File, Input, Path, Secret
from kservehelper.deprecation import forget_warnings
from kservehelper.errors import SignatureError
from kservehelper.schema.signature import build_signature
from kservehelper.types import INPUT_KEYWORDS, MISSING, InputSpec, is_file_type


def test_input_without_default_is_required() -> None:
    spec = Input(description="x")
    assert isinstance(spec, InputSpec)
    assert spec.required and spec.default is MISSING
    assert not Input(default=None).required


def test_ellipsis_default_means_required_as_in_2_0() -> None:
    assert Input(..., description="x").required
    assert Input(default=...).required


def test_path_and_file_are_real_paths() -> None:
    assert isinstance(Path("/tmp/x"), pathlib.Path)
    assert is_file_type(File) and is_file_type(pathlib.Path) and not is_file_type(str)


def test_secret_hides_its_value() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert secret.get_secret_value() == "hunter2"


def test_input_records_min_items_max_items_and_examples() -> None:
    spec = Input(default=[1], min_items=1, max_items=3, examples=[[1, 2]])
    assert (spec.min_items, spec.max_items, spec.examples) == (1, 3, ([1, 2],))
    assert spec.constraints() == {"min_items": 1, "max_items": 3}


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"ge": 5, "le": 1}, "ge must not be greater than le"),
        ({"min_length": 5, "max_length": 1}, "min_length must not be greater than max_length"),
        ({"min_items": 5, "max_items": 1}, "min_items must not be greater than max_items"),
        ({"choices": []}, "at least one choice"),
    ],
)
def test_input_rejects_contradictory_constraints(keywords: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Input(**keywords)  # type: ignore[arg-type]


def test_an_unknown_keyword_is_a_load_time_error_naming_parameter_and_keyword() -> None:
    spec = Input(default=1, gte=0)  # a typo: accepted here, where the parameter is not known
    assert spec.unknown == {"gte": 0}

    class Model:
        def predict(self, steps: int = spec) -> dict: ...

    with pytest.raises(SignatureError) as caught:
        build_signature(Model.predict)
    message = str(caught.value)
    assert "parameter 'steps'" in message
    assert "no keyword 'gte' (did you mean 'ge'?)" in message
    assert all(keyword in message for keyword in INPUT_KEYWORDS)


def test_examples_go_to_the_schema() -> None:
    class Model:
        def predict(self, prompt: str = Input(default="a", examples=["a cat", "a dog"])): ...

    schema = build_signature(Model.predict).json_schema()
    assert schema["properties"]["prompt"]["examples"] == ["a cat", "a dog"]


@pytest.fixture
def fresh_deprecations() -> Iterator[None]:
    forget_warnings()
    yield
    forget_warnings()


@pytest.mark.parametrize(
    ("name", "today", "names_the_new_api"),
    [
        ("URLPath", Path, "annotate with kservehelper.types.Path"),
        ("URLFile", File, "annotate with kservehelper.types.File"),
        ("ConcatenateIterator", collections.abc.Iterator, "collections.abc.Iterator[str]"),
    ],
)
@pytest.mark.usefixtures("fresh_deprecations")
def test_2_0_names_are_todays_types_with_one_deprecation_warning(
    name: str, today: object, names_the_new_api: str
) -> None:
    with pytest.warns(DeprecationWarning, match="kservehelper 2.0") as caught:
        value = getattr(kservehelper.types, name)
    assert value is today
    assert names_the_new_api in str(caught[0].message)
    assert caught[0].filename == __file__  # attributed to the line using the old name
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(kservehelper.types, name) is today  # once: no second warning


def test_2_0_names_import_and_serve_as_todays_kinds() -> None:
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    from kservehelper.types import ConcatenateIterator, URLFile, URLPath\n"
        "from kservehelper.schema.signature import build_signature\n"
        "class M:\n"
        "    def predict(self, a: URLPath, b: URLFile) -> ConcatenateIterator[str]: ...\n"
        "sig = build_signature(M.predict)\n"
        "print(len(seen), sig.fields['a'].type_name, sig.fields['b'].type_name, "
        "sig.output_kind.value)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["3", "Path", "File", "stream"]


def test_unknown_attribute_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'URLThing'"):
        kservehelper.types.URLThing  # type: ignore[attr-defined]  # noqa: B018
