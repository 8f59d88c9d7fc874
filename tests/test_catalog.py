"""The model catalogue and language → model resolution."""

from __future__ import annotations

import pytest

from wyoming_bodhi.engines.bodhi.catalog import (
    BUILTIN_MODEL_NAMES,
    BodhiModel,
    Catalog,
    UnknownModelError,
)


def test_builtin_catalogue_has_documented_hinglish_and_odia_models() -> None:
    catalog = Catalog()
    assert len(catalog) == 21
    for lang in ("hi", "bn", "ta", "te", "kn", "ml", "mr", "gu", "en"):
        for domain in ("general", "banking"):
            assert f"{lang}-{domain}-v2-8khz" in catalog
    assert "hi-en-general-v2-8khz" in catalog
    assert "hi-en-banking-v2-8khz" in catalog
    assert "or-general-v3-8khz" in catalog
    assert catalog.names == list(BUILTIN_MODEL_NAMES)


def test_model_name_parts_and_languages() -> None:
    hinglish = BodhiModel.from_name("hi-en-general-v2-8khz")
    assert (hinglish.language, hinglish.domain, hinglish.version) == ("hi-en", "general", 2)
    assert hinglish.sample_rate == 8000
    assert hinglish.wyoming_languages == ["hi", "hi-IN", "en", "en-IN"]
    assert BodhiModel.from_name("ta-general-v2-8khz").wyoming_languages == ["ta", "ta-IN"]
    assert "Tamil" in BodhiModel.from_name("ta-general-v2-8khz").description


@pytest.mark.parametrize("name", ["", "hindi", "hi-general", "hi-general-v2", "HI-general-v2-8khz"])
def test_bad_model_names_are_refused(name: str) -> None:
    with pytest.raises(UnknownModelError, match="not a Bodhi model name"):
        BodhiModel.from_name(name)


def test_extra_models_extend_the_catalogue() -> None:
    catalog = Catalog(["pa-general-v3-8khz", "hi-general-v2-8khz"])
    assert len(catalog) == 22
    assert catalog.get("pa-general-v3-8khz").language == "pa"


def test_unknown_model_lists_valid_ones() -> None:
    with pytest.raises(UnknownModelError, match="valid models: hi-general-v2-8khz, "):
        Catalog().get("zz-banking-v2-8khz")


@pytest.mark.parametrize(
    ("tag", "domain", "expected"),
    [
        ("hi", "general", "hi-general-v2-8khz"),
        ("hi-IN", "general", "hi-general-v2-8khz"),
        ("hi_IN", "general", "hi-general-v2-8khz"),
        ("HI", "general", "hi-general-v2-8khz"),
        ("ta", "general", "ta-general-v2-8khz"),
        ("ta-IN", "banking", "ta-banking-v2-8khz"),
        ("en-IN", "general", "en-general-v2-8khz"),
        ("hi-en", "general", "hi-en-general-v2-8khz"),
        # Odia has no banking model: the general one still serves.
        ("or", "banking", "or-general-v3-8khz"),
        ("fr", "general", None),
    ],
)
def test_language_resolution(tag: str, domain: str, expected: str | None) -> None:
    catalog = Catalog()
    default = catalog.get("bn-general-v2-8khz")
    model = catalog.for_language(tag, domain, default)
    assert (model.name if model else None) == expected


def test_default_model_wins_for_its_own_language() -> None:
    catalog = Catalog()
    default = catalog.get("hi-banking-v2-8khz")
    assert catalog.for_language("hi-IN", "general", default) is default


def test_newest_version_wins() -> None:
    catalog = Catalog(["ta-general-v3-8khz"])
    model = catalog.for_language("ta", "general", catalog.get("hi-general-v2-8khz"))
    assert model is not None and model.name == "ta-general-v3-8khz"
