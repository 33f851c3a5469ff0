"""Statements as fetched, kept in S3: streamed up with their SHA-256, streamed back for parsing.

A run never holds a whole statement in memory: the adapter's chunks go to S3 as a multipart upload (parts of
8 MiB, the only buffer), hashed on the way, and the parser reads the object back as a stream of chunks. The
file stays in S3 as the evidence the run's result rests on; its hash is on the run record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

from chalicelib.config.settings import settings
from chalicelib.domain.value_class import value_class
from chalicelib.storage.aws import client

PART_BYTES = 8 * 1024 * 1024  # S3 parts are at least 5 MiB, except the last
READ_CHUNK_BYTES = 64 * 1024


def bucket() -> str:
    """Deployed: the stage's bucket (name with account and region, from the stack); local: the stage name."""
    return settings().recon_bucket


def statement_key(channel: str, account_id: str, day: str, execution: str) -> str:
    return f"statements/{channel}/{account_id}/{day}/{execution}"


class StatementIntegrityError(Exception):
    """The stored file no longer hashes to what was fetched."""


@value_class
class StoredStatement:
    key: str
    sha256: str
    size_bytes: int


def save(chunks: Iterable[bytes], key: str) -> StoredStatement:
    """Stream ``chunks`` into ``key``. A failure while the channel is still sending aborts the upload, so a
    partial file never replaces a complete one."""
    s3 = client("s3")
    digest, size = hashlib.sha256(), 0
    buffer = bytearray()
    upload_id: str | None = None
    parts: list[dict[str, object]] = []
    try:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            buffer += chunk
            if len(buffer) >= PART_BYTES:
                if upload_id is None:
                    upload_id = s3.create_multipart_upload(Bucket=bucket(), Key=key)["UploadId"]
                parts.append(_upload_part(upload_id, key, len(parts) + 1, bytes(buffer)))
                buffer.clear()
        if upload_id is None:
            s3.put_object(Bucket=bucket(), Key=key, Body=bytes(buffer), Metadata={"sha256": digest.hexdigest()})
        else:
            if buffer:
                parts.append(_upload_part(upload_id, key, len(parts) + 1, bytes(buffer)))
            s3.complete_multipart_upload(Bucket=bucket(), Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
    except BaseException:
        if upload_id is not None:
            s3.abort_multipart_upload(Bucket=bucket(), Key=key, UploadId=upload_id)
        raise
    return StoredStatement(key, digest.hexdigest(), size)


def _upload_part(upload_id: str, key: str, number: int, data: bytes) -> dict[str, object]:
    answer = client("s3").upload_part(Bucket=bucket(), Key=key, UploadId=upload_id, PartNumber=number, Body=data)
    return {"PartNumber": number, "ETag": answer["ETag"]}


def read(key: str, *, expected_sha256: str | None = None) -> Iterator[bytes]:
    """The stored file as a stream of chunks; with ``expected_sha256`` the last chunk is only released after
    the whole stream hashed to it (what was parsed is what was fetched)."""
    body = client("s3").get_object(Bucket=bucket(), Key=key)["Body"]
    digest = hashlib.sha256()
    held: bytes | None = None
    for chunk in body.iter_chunks(chunk_size=READ_CHUNK_BYTES):
        digest.update(chunk)
        if held is not None:
            yield held
        held = chunk
    if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
        raise StatementIntegrityError(f"stored statement {key} does not hash to the SHA-256 recorded at fetch")
    if held is not None:
        yield held
