"""Issued invoices' PDFs in S3, and links to them that expire."""

from __future__ import annotations

from chalicelib.domain.clock import iso, utcnow
from chalicelib.invoices.config import bucket
from chalicelib.storage.aws import client

LINK_TTL_S = 900  # a link handed out lives 15 minutes; ask again for a fresh one


def key_for(merchant_id: str, invoice_id: str, name: str) -> str:
    return f"invoices/{merchant_id}/{invoice_id}/{name}.pdf"


def put(key: str, body: bytes) -> None:
    client("s3").put_object(Bucket=bucket(), Key=key, Body=body, ContentType="application/pdf")


def link(key: str) -> dict[str, str]:
    from datetime import timedelta

    url = client("s3").generate_presigned_url("get_object", Params={"Bucket": bucket(), "Key": key},
                                              ExpiresIn=LINK_TTL_S)
    return {"url": url, "expires_at": iso(utcnow() + timedelta(seconds=LINK_TTL_S))}
