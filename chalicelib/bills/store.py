"""Rendered documents in S3: bills by payment/refund version, statements by merchant and month.

  bills/<merchant_id>/<object id>/v<version>.pdf        a bill as it was at that version of its record
  statements/<merchant_id>/<YYYY-MM>/statement.{pdf,csv,json}

A bill is rendered when it is first asked for and kept under its record's version, so a later change (a refund
of the payment) makes a new object and an old link keeps showing what was true when it was made. Reading goes
through short presigned URLs: S3 serves the bytes, the API never carries a binary body.
"""

from __future__ import annotations

import os

from botocore.exceptions import ClientError

from chalicelib.config.settings import SettingsError, settings
from chalicelib.storage.aws import client

DOWNLOAD_URL_TTL_S = 300  # a presigned URL is used at once (a redirect), never stored or shown to be kept


def bucket() -> str:
    name = os.environ.get("PAYHUB_DOCUMENTS_BUCKET")
    if name:
        return name
    if settings().is_deployed:
        raise SettingsError("PAYHUB_DOCUMENTS_BUCKET is not set: the stack gives it to the functions that need it")
    return settings().names.documents_bucket


def bill_key(merchant_id: str, object_id: str, version: int) -> str:
    return f"bills/{merchant_id}/{object_id}/v{version}.pdf"


def statement_key(merchant_id: str, month: str, extension: str) -> str:
    return f"statements/{merchant_id}/{month}/statement.{extension}"


def exists(key: str) -> bool:
    try:
        client("s3").head_object(Bucket=bucket(), Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def put(key: str, data: bytes, content_type: str, *, filename: str) -> None:
    client("s3").put_object(Bucket=bucket(), Key=key, Body=data, ContentType=content_type,
                            ContentDisposition=f'inline; filename="{filename}"')


def get(key: str) -> bytes | None:
    try:
        body: bytes = client("s3").get_object(Bucket=bucket(), Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return body


def download_url(key: str, ttl_s: int = DOWNLOAD_URL_TTL_S) -> str:
    url: str = client("s3").generate_presigned_url("get_object", Params={"Bucket": bucket(), "Key": key},
                                                   ExpiresIn=ttl_s)
    return url
