"""face_recognition's own test photos, for every test of faces (the fixture `test_images`).

The face_recognition 1.3.0 sdist on PyPI carries tests/test_images (six photos of one person, one of another). The
session fetches the sdist once with pip, checks its hash, keeps only those photos under
~/.cache/tongguan-test-data/ (TG_TEST_DATA overrides) and runs offline after.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.conftest import unavailable

SDIST = "face_recognition-1.3.0.tar.gz"
SDIST_SHA256 = "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec"
IMAGES_IN_SDIST = "face_recognition-1.3.0/tests/test_images/"


def _cache_dir() -> Path:
    if os.environ.get("TG_TEST_DATA"):
        return Path(os.environ["TG_TEST_DATA"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tongguan-test-data"


def _fetch_test_images(target: Path) -> None:
    """Download the sdist with pip, check its hash, and keep only its test photos in `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        download = Path(tmp) / "download"
        pip = [sys.executable, "-m", "pip", "download", "-q", "face_recognition==1.3.0", "--no-deps"]
        subprocess.run(
            [*pip, "--no-binary", ":all:", "-d", str(download)],
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        sdist = download / SDIST
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            pytest.fail(f"{SDIST} has sha256 {digest}, expected {SDIST_SHA256}", pytrace=False)
        staged = Path(tmp) / "images"
        staged.mkdir()
        with tarfile.open(sdist) as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix(IMAGES_IN_SDIST)
                # Only plain files directly in test_images: no paths out of the folder, no links.
                if member.isfile() and member.name.startswith(IMAGES_IN_SDIST) and name and "/" not in name:
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    (staged / name).write_bytes(extracted.read())
        try:
            staged.rename(target)  # atomic: a run that stops halfway leaves no half-filled cache
        except OSError:
            if not target.is_dir():  # another session filled it meanwhile
                raise


@pytest.fixture(scope="session")
def test_images() -> Path:
    target = _cache_dir() / "face_recognition-1.3.0-test_images"
    if not target.is_dir():
        try:
            _fetch_test_images(target)
        except (OSError, subprocess.SubprocessError, tarfile.TarError) as exc:
            stderr = getattr(exc, "stderr", "") or ""
            unavailable("PyPI (face_recognition 1.3.0 sdist, for its test photos)", f"{exc} {stderr[-500:]}")
    return target
