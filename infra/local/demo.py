"""The demo merchant the local stack seeds. Channel accounts are provisioned by ``infra.local.provision``."""

from __future__ import annotations

from chalicelib.service.merchants import NewMerchant, create_merchant


def create_demo_merchant(webhook_url: str | None, *, late_success_policy: str = "refund") -> NewMerchant:
    return create_merchant("Demo Merchant", webhook_url=webhook_url, late_success_policy=late_success_policy)
