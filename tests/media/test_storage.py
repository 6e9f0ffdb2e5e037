"""Media stores: the same behaviour from a local folder and from S3 (moto's server on 127.0.0.1, through boto3).

Moto runs as a subprocess in server mode with IAM authentication switched on, so every request boto3 makes
carries a SigV4 signature that moto checks. Moto serves presigned URLs without checking their signature or
age (and fails on them once authentication is on), and it stores a body whose Content-MD5 is wrong. So a
small gate in front of it makes those two checks the way S3 does (presigned GETs by AWS's SigV4 query-string
rules, BadDigest for a wrong Content-MD5) and passes every other request through unchanged, headers included.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import SecretStr

from core.errors import NotFoundError
from core.settings import Settings
from media.storage import LocalStore, MediaMissing, MediaStore, S3Store, get_store
from tests.asgi import serving
from tests.conftest import unavailable

MOTO_START_SECONDS = 30
PHOTO = b"\xff\xd8\xff\xe0" + os.urandom(2048) + b"\xff\xd9"
PHOTO_KEY = f"blobs/ab/cd/{hashlib.sha256(PHOTO).hexdigest()}.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- moto in server mode -------------------------------------------------------------------------------


@dataclass
class S3Server:
    endpoint: str  # the gate in front of moto; clients talk to this
    access_key: str
    secret_key: str
    region: str = "ap-southeast-1"  # not us-east-1, so bucket creation sends a LocationConstraint

    def settings(self, bucket: str) -> Settings:
        return Settings(
            media_backend="s3",
            s3_endpoint=self.endpoint,
            s3_bucket=bucket,
            s3_region=self.region,
            s3_access_key=self.access_key,
            s3_secret_key=SecretStr(self.secret_key),
        )


def _wait_until_answering(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + MOTO_START_SECONDS
    last: object = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            unavailable("moto S3 server", f"it exited with code {process.returncode}: {tail}")
        try:
            httpx.get(f"{url}/moto-api/", timeout=1)
            return
        except httpx.HTTPError as exc:
            last = exc
            time.sleep(0.1)
    unavailable("moto S3 server", f"no answer on {url} within {MOTO_START_SECONDS} s ({last})")


def _enable_iam_auth(url: str) -> tuple[str, str]:
    """Create a user allowed s3:* and switch moto's signature checking on; returns that user's keys."""
    iam = boto3.client(
        "iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bootstrap", aws_secret_access_key="x"
    )
    iam.create_user(UserName="tongguan")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="tongguan", PolicyName="media", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="tongguan")["AccessKey"]
    # From here on every request must be signed by a key moto knows.
    httpx.post(f"{url}/moto-api/reset-auth", content=b"0", timeout=5).raise_for_status()
    return key["AccessKeyId"], key["SecretAccessKey"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_answering(process, url, log)
        access_key, secret_key = _enable_iam_auth(url)
        gate = PresignGate(url, access_key, secret_key)
        thread = threading.Thread(target=gate.serve_forever, name="s3-gate", daemon=True)
        thread.start()
        try:
            yield S3Server(f"http://127.0.0.1:{gate.server_port}", access_key, secret_key)
        finally:
            gate.shutdown()
            gate.server_close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the gate: S3's presigned-URL checks, which moto lacks ---------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def presign_refusal(
    method: str, path: str, query: str, headers: Any, secret_key: str, now: datetime
) -> tuple[str, str] | None:
    """Why S3 would refuse this presigned request (error code, message), or None; written from AWS's SigV4 docs."""
    params = parse_qsl(query, keep_blank_values=True)
    q = dict(params)
    if q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return "AuthorizationQueryParametersError", "only AWS4-HMAC-SHA256 is accepted"
    signed_at = datetime.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    # S3 counts whole seconds: the URL is good up to and including second X-Amz-Date + X-Amz-Expires.
    if now.replace(microsecond=0) > signed_at + timedelta(seconds=int(q["X-Amz-Expires"])):
        return "AccessDenied", "Request has expired"
    signed_headers = q["X-Amz-SignedHeaders"].split(";")
    canonical_query = "&".join(
        f"{_uri_encode(k)}={_uri_encode(v)}" for k, v in sorted(params) if k != "X-Amz-Signature"
    )
    canonical_headers = "".join(f"{h}:{(headers.get(h) or '').strip()}\n" for h in signed_headers)
    canonical_request = "\n".join(
        [method, path, canonical_query, canonical_headers, ";".join(signed_headers), "UNSIGNED-PAYLOAD"]
    )
    scope = q["X-Amz-Credential"].split("/", 1)[1]
    day, region, service, _ = scope.split("/")
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", q["X-Amz-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, q.get("X-Amz-Signature", "")):
        return "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided"
    return None


class PresignGate(ThreadingHTTPServer):
    """Moto behind a gate that adds two checks S3 makes and moto does not: presigned URLs and Content-MD5."""

    def __init__(self, upstream: str, access_key: str, secret_key: str) -> None:
        super().__init__(("127.0.0.1", 0), _GateHandler)
        self.upstream = urlsplit(upstream)
        self.secret_key = secret_key
        self.client = boto3.client(
            "s3",
            endpoint_url=upstream,
            region_name="us-east-1",
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )


class _GateHandler(BaseHTTPRequestHandler):
    server: PresignGate
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        if "X-Amz-Signature=" in query and "Authorization" not in self.headers:
            self._presigned_get(path, query)
        else:
            self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    do_PUT = do_POST = do_DELETE = do_HEAD

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _presigned_get(self, path: str, query: str) -> None:
        refusal = presign_refusal("GET", path, query, self.headers, self.server.secret_key, datetime.now(UTC))
        if refusal:
            code, message = refusal
            body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
            self._reply(403, {"Content-Type": "application/xml", "Content-Length": str(len(body))}, body)
            return
        bucket, _, key = unquote(path).lstrip("/").partition("/")
        try:
            found = self.server.client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            self._reply(status, {"Content-Length": "0"}, b"")
            return
        data = found["Body"].read()
        self._reply(200, {"Content-Type": found["ContentType"], "Content-Length": str(len(data))}, data)

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        # S3 refuses a body whose Content-MD5 does not match; moto does not look.
        sent_md5 = self.headers.get("Content-MD5")
        if sent_md5 and sent_md5 != base64.b64encode(hashlib.md5(body or b"").digest()).decode():
            error = (
                b"<Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match</Message></Error>"
            )
            self._reply(400, {"Content-Type": "application/xml", "Content-Length": str(len(error))}, error)
            return
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=30)
        try:
            # Headers go through as sent, Host included: moto checks the signature over them.
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body)
            response = upstream.getresponse()
            data = response.read()
        finally:
            upstream.close()
        headers = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}}
        headers["Content-Length"] = (
            response.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
        )
        self._reply(response.status, headers, data)


# --- the two stores ------------------------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> MediaStore:
    if request.param == "local":
        return get_store(Settings(media_backend="local", media_root=tmp_path / "media"))
    server: S3Server = request.getfixturevalue("s3_server")
    s3 = get_store(server.settings(f"tg-media-{uuid.uuid4().hex[:12]}"))
    assert isinstance(s3, S3Store)
    s3.ensure_bucket()
    return s3


def test_put_then_get_returns_the_same_bytes(store: MediaStore) -> None:
    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    assert store.get(PHOTO_KEY) == PHOTO


def test_putting_the_same_key_twice_is_harmless(store: MediaStore) -> None:
    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    assert store.get(PHOTO_KEY) == PHOTO


def test_exists_until_deleted_and_deleting_twice_is_harmless(store: MediaStore) -> None:
    key = "derived/" + hashlib.sha256(PHOTO).hexdigest() + "/thumb.webp"
    assert not store.exists(key)
    store.put(key, b"RIFF....WEBP", content_type="image/webp")
    assert store.exists(key)
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)


def test_missing_key_raises_media_missing(store: MediaStore) -> None:
    with pytest.raises(MediaMissing) as caught:
        store.get(PHOTO_KEY)
    assert isinstance(caught.value, NotFoundError)
    assert caught.value.code == "media_missing"
    assert caught.value.status == 404


def test_a_folder_is_not_a_stored_key(store: MediaStore) -> None:
    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    assert not store.exists("blobs/ab")
    with pytest.raises(MediaMissing):
        store.get("blobs/ab")


UNSAFE_KEYS = [
    "/etc/passwd",
    "../outside.jpg",
    "blobs/../../outside.jpg",
    "blobs/./x.jpg",
    "blobs\\x.jpg",
    "blobs/x\x00.jpg",
    "",
    "blobs//x.jpg",
    "blobs/",
    ".hidden",
    "blobs/.x.jpg.abc.tmp",  # what a temp file of ours is called
    "C:/x.jpg",
    "x" * 1025,
]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_keys_that_could_escape_the_root_are_refused(store: MediaStore, key: str) -> None:
    for call in (
        lambda: store.put(key, b"x", content_type="image/jpeg"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.presigned_url(key, expires_s=60),
    ):
        with pytest.raises(ValueError, match="unsafe media key"):
            call()


def test_presigned_url_serves_the_bytes_until_it_expires(store: MediaStore) -> None:
    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    url = store.presigned_url(PHOTO_KEY, expires_s=1)
    if isinstance(store, LocalStore):
        assert url is None  # the API signs its own URLs for local media
        return
    assert url is not None
    fresh = httpx.get(url, timeout=5)
    assert fresh.status_code == 200
    assert fresh.content == PHOTO
    assert fresh.headers["content-type"] == "image/jpeg"
    time.sleep(2)
    expired = httpx.get(url, timeout=5)
    assert expired.status_code == 403
    assert b"Request has expired" in expired.content


def test_presigned_url_for_one_key_does_not_open_another(s3_server: S3Server) -> None:
    store = S3Store.from_settings(s3_server.settings(f"tg-media-{uuid.uuid4().hex[:12]}"))
    store.ensure_bucket()
    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    store.put("blobs/00/00/other.jpg", b"other", content_type="image/jpeg")
    url = store.presigned_url(PHOTO_KEY, expires_s=60)
    assert url is not None
    forged = url.replace(PHOTO_KEY, "blobs/00/00/other.jpg")
    response = httpx.get(forged, timeout=5)
    assert response.status_code == 403
    assert b"SignatureDoesNotMatch" in response.content


def test_presigned_url_lifetime_is_bounded(s3_server: S3Server) -> None:
    store = S3Store.from_settings(s3_server.settings("tg-media-any"))
    for seconds in (0, 7 * 24 * 3600 + 1):
        with pytest.raises(ValueError, match="expires_s"):
            store.presigned_url(PHOTO_KEY, expires_s=seconds)


def test_s3_object_keeps_its_content_type(s3_server: S3Server) -> None:
    store = S3Store.from_settings(s3_server.settings(f"tg-media-{uuid.uuid4().hex[:12]}"))
    store.ensure_bucket()
    store.ensure_bucket()  # running setup twice is fine
    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    head = store.client.head_object(Bucket=store.bucket, Key=PHOTO_KEY)
    assert head["ContentType"] == "image/jpeg"
    assert head["ContentLength"] == len(PHOTO)


def test_s3_put_carries_a_content_md5_so_damaged_uploads_are_refused(s3_server: S3Server) -> None:
    store = S3Store.from_settings(s3_server.settings(f"tg-media-{uuid.uuid4().hex[:12]}"))
    store.ensure_bucket()
    sent: list[dict[str, Any]] = []
    store.client.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(request.headers))

    def damage(request: Any, **_: Any) -> None:
        # A byte changed in transit, after the MD5 was computed.
        request.body = io.BytesIO(request.body.read()[:-1] + b"!")

    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    assert sent[0]["Content-MD5"] == base64.b64encode(hashlib.md5(PHOTO).digest())
    store.client.meta.events.register_first("before-send.s3.PutObject", damage)
    with pytest.raises(ClientError) as caught:
        store.put("blobs/00/00/damaged.jpg", PHOTO, content_type="image/jpeg")
    assert caught.value.response["Error"]["Code"] == "BadDigest"
    assert not store.exists("blobs/00/00/damaged.jpg")


def test_moto_checks_signatures_so_a_wrong_secret_is_refused(s3_server: S3Server) -> None:
    bucket = f"tg-media-{uuid.uuid4().hex[:12]}"
    S3Store.from_settings(s3_server.settings(bucket)).ensure_bucket()
    wrong = S3Store.from_settings(
        s3_server.settings(bucket).model_copy(update={"s3_secret_key": SecretStr("not-the-secret")})
    )
    with pytest.raises(ClientError) as caught:
        wrong.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


# --- local folder specifics ----------------------------------------------------------------------------


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_crash_mid_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    assert not store.exists(PHOTO_KEY)
    assert _files(tmp_path) == []  # no temp file left behind either


def test_a_crash_mid_rewrite_keeps_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    assert store.get(PHOTO_KEY) == PHOTO
    assert _files(tmp_path) == [tmp_path / PHOTO_KEY]


def test_local_store_writes_under_the_configured_media_root(tmp_path: Path) -> None:
    store = get_store(Settings(media_backend="local", var_dir=tmp_path / "var"))
    store.put(PHOTO_KEY, PHOTO, content_type="image/jpeg")
    assert (tmp_path / "var" / "media" / PHOTO_KEY).read_bytes() == PHOTO


# --- choosing a backend --------------------------------------------------------------------------------


def test_the_settings_word_picks_the_backend(tmp_path: Path) -> None:
    assert isinstance(get_store(Settings(media_backend="local", media_root=tmp_path)), LocalStore)
    s3 = get_store(Settings(media_backend="s3", s3_endpoint="http://127.0.0.1:9", s3_bucket="tg-media"))
    assert isinstance(s3, S3Store)
    assert s3.bucket == "tg-media"


def test_an_unknown_backend_word_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'gcs'.*local, s3"):
        get_store(Settings(media_backend="gcs"))


async def test_a_photo_uploaded_through_the_api_lands_in_s3_and_is_served_back(db, tmp_path, s3_server):

    from core.accounts.service import create_staff
    from core.media.models import Blob
    from media.service import blob_key
    from tests.factories import jpeg_bytes
    from tongguan.app import create_app

    bucket = f"tg-media-{uuid.uuid4().hex[:12]}"
    settings = s3_server.settings(bucket).model_copy(update={"database_url": db, "var_dir": tmp_path})
    s3 = get_store(settings)
    assert isinstance(s3, S3Store)
    s3.ensure_bucket()
    app = create_app(settings)
    async with serving(app, base_url="http://t") as api:
        await create_staff(username="inspector.s3", password="correct horse", role="inspector")
        token = (await api.post("/auth/token", data={"username": "inspector.s3", "password": "correct horse"})).json()
        headers = {"authorization": f"Bearer {token['access_token']}"}
        body = (
            await api.post("/staff/v1/media", files={"file": ("a.jpg", jpeg_bytes(), "image/jpeg")}, headers=headers)
        ).json()
        blob = await Blob.get()
        assert s3.exists(blob_key(blob.sha256, blob.format))
        assert not list(tmp_path.rglob("*.jpg")), "nothing of the photo is kept on the API machine's disk"
        thumb = await api.get(body["thumb_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"


def test_the_ensure_bucket_command_creates_the_configured_bucket(s3_server: S3Server, tmp_path: Path) -> None:
    import os

    bucket = f"tg-media-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "TG_VAR_DIR": str(tmp_path),
        "TG_MEDIA_BACKEND": "s3",
        "TG_S3_ENDPOINT": s3_server.endpoint,
        "TG_S3_BUCKET": bucket,
        "TG_S3_REGION": s3_server.region,
        "TG_S3_ACCESS_KEY": s3_server.access_key,
        "TG_S3_SECRET_KEY": s3_server.secret_key,
    }
    for _ in range(2):  # running it again is harmless
        result = subprocess.run(
            [sys.executable, "-m", "tongguan.cli", "media", "ensure-bucket"], env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
    store = get_store(s3_server.settings(bucket))
    store.put("probe/a.txt", b"ok", content_type="text/plain")
    assert store.get("probe/a.txt") == b"ok"
