"""Resource names per stage: the one place that says what a table, queue or secret is called.

Used by the runtime (``settings``), the CDK stack and the local stack alike, so stages stay isolated by
name: nothing of ``dev`` can be addressed from ``prod`` code and vice versa.
"""

from __future__ import annotations

from chalicelib.domain.value_class import value_class

STAGES = ("local", "dev", "test", "prod")
QUEUES = ("webhooks", "status-sync", "refunds", "recon", "invoices", "payouts")


@value_class
class StageNames:
    """The names of one stage's tables, queues, buckets and secrets."""

    stage: str

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; expected one of {STAGES}")

    @property
    def prefix(self) -> str:
        return f"payhub-{self.stage}"

    @property
    def state_table(self) -> str:
        return f"{self.prefix}-state"

    @property
    def ledger_table(self) -> str:
        return f"{self.prefix}-ledger"

    @property
    def idempotency_table(self) -> str:
        return f"{self.prefix}-idempotency"

    @property
    def config_table(self) -> str:
        return f"{self.prefix}-config"

    @property
    def recon_table(self) -> str:
        return f"{self.prefix}-recon"

    @property
    def archive_bucket(self) -> str:
        """Records moved out of the tables (chalicelib/retention). Deployed, named like the recon bucket; the
        runtime reads it from PAYHUB_ARCHIVE_BUCKET."""
        return f"{self.prefix}-archive"

    @property
    def documents_bucket(self) -> str:
        """Bills and monthly statements (chalicelib/bills). Deployed, named like the recon bucket; the runtime
        reads the full name from PAYHUB_DOCUMENTS_BUCKET."""
        return f"{self.prefix}-documents"

    @property
    def recon_bucket(self) -> str:
        """Statements as fetched and reconciliation reports. Deployed, the bucket's name gets the AWS account
        and region appended (bucket names are global); the runtime reads it from PAYHUB_RECON_BUCKET."""
        return f"{self.prefix}-recon"

    @property
    def invoice_bucket(self) -> str:
        """Issued invoices' PDFs (chalicelib/invoices/files.py). Deployed, named like the recon bucket; the runtime
        reads it from PAYHUB_INVOICE_BUCKET."""
        return f"{self.prefix}-invoices"

    def invoicing_secret_prefix(self) -> str:
        """Each merchant's invoice-provider credentials: ``<prefix><merchant_id>``."""
        return f"payhub/{self.stage}/invoicing/"

    def queue(self, name: str) -> str:
        if name not in QUEUES:
            raise ValueError(f"unknown queue {name!r}")
        return f"{self.prefix}-{name}"

    def dead_letter_queue(self, name: str) -> str:
        return f"{self.queue(name)}-dlq"

    def channel_secret(self, account_id: str) -> str:
        return f"payhub/{self.stage}/channels/{account_id}"

    def bank_secret(self, reserve_id: str) -> str:
        """Keys for one of our accounts at a bank (chalicelib/banks/accounts.py)."""
        return f"payhub/{self.stage}/banks/{reserve_id}"

    def merchant_webhook_secret(self, merchant_id: str) -> str:
        return f"payhub/{self.stage}/merchants/{merchant_id}/webhook"

    @property
    def risk_providers_secret(self) -> str:
        """Credentials of the risk service and the step-up providers, and the key one-time codes are hashed with."""
        return f"payhub/{self.stage}/risk/providers"

    @property
    def kms_alias(self) -> str:
        return f"alias/{self.prefix}"

    @property
    def card_vault_key_alias(self) -> str:
        """Symmetric key whose data keys encrypt card numbers (envelope encryption)."""
        return f"alias/{self.prefix}-card-vault"

    @property
    def card_fingerprint_key_alias(self) -> str:
        """HMAC key that fingerprints card numbers and keys the hash of requests that carry card data."""
        return f"alias/{self.prefix}-card-fingerprint"

    @property
    def link_key_alias(self) -> str:
        """HMAC key from which list cursors and payer bill links are signed (chalicelib/bills/signing.py)."""
        return f"alias/{self.prefix}-links"


def queue_url_variable(queue: str) -> str:
    """The environment variable a deployed function finds a queue's URL in (the template sets it for every queue
    the function sends to), so no function asks SQS for a URL at run time."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    return "PAYHUB_QUEUE_URL_" + queue.upper().replace("-", "_")
