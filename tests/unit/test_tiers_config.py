import pytest

from energent_shared import config
from energent_shared.tiers import TIERS, tier


def test_tier_table_is_the_guides_table_3_3():
    rows = {t.name: (t.guide_name, t.cpu, t.memory_gib, t.storage_gib, t.concurrent_workflows) for t in TIERS.values()}
    assert rows == {
        "basic": ("Basis", 1, 2, 10, 1),
        "standard": ("Standaard", 2, 4, 25, 2),
        "premium": ("Premium", 4, 8, 50, 4),
        "enterprise": ("Enterprise", 8, 16, 100, 8),
    }


def test_unknown_tier_names_the_valid_ones():
    with pytest.raises(ValueError, match="expected one of basic, standard, premium, enterprise"):
        tier("gold")


def test_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("TOKEN_ISSUER", "https://api.energent.ai/")
    config.settings.cache_clear()
    settings = config.settings()
    assert settings.token_issuer == "https://api.energent.ai"
    assert settings.jwks_url == "https://api.energent.ai/.well-known/jwks.json"
    assert settings.token_audience == "energent-api"


@pytest.mark.parametrize("name, value, message", [
    ("SECRET_CACHE_TTL_S", "soon", "must be a number"),
    ("SECRET_CACHE_TTL_S", "-1", "must not be negative"),
])
def test_bad_settings_fail_loudly(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    config.settings.cache_clear()
    with pytest.raises(ValueError, match=message):
        config.settings()
