"""Where media bytes live (媒体存储): a local folder by default, any S3-compatible object store when configured.

Keys are built by our own code and are content-addressed ("blobs/ab/cd/<sha256>.jpg",
"derived/<sha256>/thumb.webp"), so a key always names the same bytes and writing it twice is harmless.
boto3 is imported here and nowhere else.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from core.errors import NotFoundError
from core.settings import Settings

# Each part starts with a letter or digit, so ".." and our own ".<name>.*.tmp" files can never be keys.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
_MAX_KEY_LENGTH = 1024  # S3's limit, applied to both backends so a key valid on one is valid on the other
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer


class MediaMissing(NotFoundError):
    """Nothing is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__("media_missing", f"no media stored under {key!r}")
        self.key = key


class MediaStore(Protocol):
    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        """Store `data` under `key`; idempotent, since a key always names the same bytes."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under `key`; `MediaMissing` when there are none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""
        ...

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        """A URL that serves `key` without credentials for `expires_s` seconds, or None when the API signs its own."""
        ...


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key, else raise ValueError (no absolute paths, "..", "\\" or NUL)."""
    if not isinstance(key, str) or len(key) > _MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise ValueError(f"unsafe media key {key!r}: expected parts of [A-Za-z0-9._-] joined by '/'")
    return key


class LocalStore:
    """Media in a folder (`TG_MEDIA_ROOT`, default var/media); the API serves and signs its own URLs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStore:
        return cls(settings.effective_media_root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        # The content type is implied by the key's suffix here; only S3 needs it stored.
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: readers see the old file or the whole new one, never half,
        # and a crash leaves at most a hidden temp file that no key can name.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise MediaMissing(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        check_key(key)
        return None


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: without this a power cut can undo it even though the data was synced."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the data itself is already synced
    finally:
        os.close(fd)


class S3Store:
    """Media in a bucket of any S3-compatible object store, through boto3."""

    def __init__(self, client: Any, bucket: str) -> None:
        from botocore.exceptions import ClientError

        self.client = client
        self.bucket = bucket
        self._client_error = ClientError

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        # Imported here so that a local-only deployment never pays for loading boto3.
        import boto3
        from botocore.config import Config

        config = Config(
            signature_version="s3v4",
            # Custom endpoints (MinIO, Ceph, a test server on 127.0.0.1) rarely have wildcard DNS for buckets.
            s3={"addressing_style": "path" if settings.s3_endpoint else "auto"},
            connect_timeout=5,
            read_timeout=30,
            retries={"mode": "standard", "total_max_attempts": 3},  # the first try and two retries
            # botocore >= 1.36 adds CRC checksums by default, which several S3-compatible stores reject;
            # we send Content-MD5 ourselves, which they all check.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint or None,
            region_name=settings.s3_region,
            # Empty keys: let boto3 find credentials itself (environment, instance role).
            aws_access_key_id=settings.s3_access_key or None,
            aws_secret_access_key=settings.s3_secret_key.get_secret_value() or None,
            config=config,
        )
        return cls(client, settings.s3_bucket)

    def _is_missing(self, exc: Exception) -> bool:
        # HEAD answers carry no body, so a missing key there shows up as the bare status "404".
        return isinstance(exc, self._client_error) and exc.response.get("Error", {}).get("Code") in {
            "NoSuchKey",
            "404",
            "NotFound",
        }

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist; for setup and tests, never called on the request path."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except self._client_error as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
                raise
        region = self.client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
        except self._client_error as exc:
            # Another process created it between our HEAD and CREATE.
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")
        self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type, ContentMD5=md5
        )

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except self._client_error as exc:
            if self._is_missing(exc):
                raise MediaMissing(key) from None
            raise
        body = response["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except self._client_error as exc:
            if self._is_missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        if not 1 <= expires_s <= _MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_s must be between 1 and {_MAX_PRESIGN_SECONDS} seconds, not {expires_s}")
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=expires_s
        )
        return url


BACKENDS: dict[str, type[LocalStore] | type[S3Store]] = {"local": LocalStore, "s3": S3Store}


def get_store(settings: Settings) -> MediaStore:
    """The media store named by `TG_MEDIA_BACKEND`."""
    try:
        backend = BACKENDS[settings.media_backend]
    except KeyError:
        choices = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unknown media backend {settings.media_backend!r}; choose one of: {choices}") from None
    return backend.from_settings(settings)
