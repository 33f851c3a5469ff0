"""A deployed stage reads every setting from its template and refuses to start when one is missing or unsafe:
without PAYHUB_PUBLIC_BASE_URL every channel would be told to call the hub back at 127.0.0.1."""

from __future__ import annotations

import pytest

from chalicelib.config.settings import LOCAL_PUBLIC_BASE_URL, SettingsError, load_settings

DEPLOYED = ("dev", "test", "prod")


@pytest.mark.parametrize("stage", DEPLOYED)
def test_a_deployed_stage_refuses_to_start_without_its_public_url(stage: str) -> None:
    with pytest.raises(SettingsError, match=f"PAYHUB_PUBLIC_BASE_URL is required on the {stage} stage"):
        load_settings({"PAYHUB_STAGE": stage})
    with pytest.raises(SettingsError, match="PAYHUB_PUBLIC_BASE_URL is required"):
        load_settings({"PAYHUB_STAGE": stage, "PAYHUB_PUBLIC_BASE_URL": "  "})


@pytest.mark.parametrize("stage", DEPLOYED)
@pytest.mark.parametrize("url", ["http://pay.example.com", "pay.example.com", "https://", "ftp://pay.example.com",
                                 "https://user:pw@pay.example.com", "https://pay.example.com/?x=1",
                                 "https://pay.example.com/#top"])
def test_a_deployed_stage_refuses_a_public_url_that_is_not_plain_https(stage: str, url: str) -> None:
    with pytest.raises(SettingsError, match="PAYHUB_PUBLIC_BASE_URL must be"):
        load_settings({"PAYHUB_STAGE": stage, "PAYHUB_PUBLIC_BASE_URL": url})


@pytest.mark.parametrize("stage", DEPLOYED)
def test_a_deployed_stage_takes_its_https_custom_domain(stage: str) -> None:
    settings = load_settings({"PAYHUB_STAGE": stage, "PAYHUB_PUBLIC_BASE_URL": "https://pay.example.com/"})
    assert settings.public_base_url == "https://pay.example.com"


def test_only_the_local_stage_falls_back_to_the_local_api() -> None:
    assert load_settings({"PAYHUB_STAGE": "local"}).public_base_url == LOCAL_PUBLIC_BASE_URL
    assert load_settings({}).public_base_url == LOCAL_PUBLIC_BASE_URL
    local = load_settings({"PAYHUB_STAGE": "local", "PAYHUB_PUBLIC_BASE_URL": "http://127.0.0.1:9999"})
    assert local.public_base_url == "http://127.0.0.1:9999"


def test_a_deployed_function_never_guesses_the_recon_bucket() -> None:
    base = {"PAYHUB_STAGE": "prod", "PAYHUB_PUBLIC_BASE_URL": "https://pay.example.com"}
    with pytest.raises(SettingsError, match="PAYHUB_RECON_BUCKET is not set"):
        _ = load_settings(base).recon_bucket
    given = load_settings({**base, "PAYHUB_RECON_BUCKET": "payhub-prod-recon-123456789012-ap-east-1"})
    assert given.recon_bucket == "payhub-prod-recon-123456789012-ap-east-1"
    assert load_settings({"PAYHUB_STAGE": "local"}).recon_bucket == "payhub-local-recon"
