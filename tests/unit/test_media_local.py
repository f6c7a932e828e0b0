"""The local folder backend: safe keys, atomic writes, HMAC-signed links that expire."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from workers.media import open_storage, redact_url
from workers.media.base import check_key
from workers.media.errors import TooLarge
from workers.media.local import LocalStorage, load_secret

SECRET = b"0123456789abcdef0123456789abcdef"


def test_links_are_checked_in_constant_time_against_key_and_expiry(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, secret=SECRET)
    link = storage.signed_url("m/a.jpg", expires_in=60)
    path, query = link.split("?")
    assert path == "/media/signed/m/a.jpg"
    params = dict(part.split("=") for part in query.split("&"))
    assert storage.check_signature("m/a.jpg", params["expires"], params["sig"]) == "ok"
    assert storage.check_signature("m/b.jpg", params["expires"], params["sig"]) == "invalid"
    assert storage.check_signature("m/a.jpg", str(int(params["expires"]) + 1), params["sig"]) == "invalid"
    assert storage.check_signature("m/a.jpg", params["expires"], "é" + params["sig"][1:]) == "invalid"
    assert storage.check_signature("m/a.jpg", "-1", params["sig"]) == "invalid"
    later = int(params["expires"]) + 1
    assert storage.check_signature("m/a.jpg", params["expires"], params["sig"], now=later) == "expired"
    other = LocalStorage(tmp_path, secret=SECRET[::-1])
    assert other.check_signature("m/a.jpg", params["expires"], params["sig"]) == "invalid"


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../x", "m/../x", "m/.hidden", "m//x", "m/x\\y", "m/x y", "a" * 600]
)
def test_only_safe_keys_are_used(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="object key"):
        check_key(key)
    with pytest.raises(ValueError, match="object key"):
        LocalStorage(tmp_path, secret=SECRET).path_of(key)


def test_a_write_is_all_or_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, secret=SECRET)

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            raise TooLarge(10)

    storage.put_stream("m/a.bin", io.BytesIO(b"first"), content_type="application/octet-stream")
    with pytest.raises(TooLarge):
        storage.put_stream("m/a.bin", io.BufferedReader(Broken()), content_type="application/octet-stream")
    with storage.open("m/a.bin") as kept:
        assert kept.read() == b"first"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["a.bin"]  # no partial file left


def test_the_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "media.secret"
    secret = load_secret(path)
    assert len(secret) == 64 and load_secret(path) == secret
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_storage_urls(tmp_path: Path) -> None:
    assert isinstance(open_storage((tmp_path / "m").as_uri(), secret=SECRET), LocalStorage)
    with pytest.raises(ValueError, match="secret"):
        open_storage((tmp_path / "m").as_uri())
    with pytest.raises(ValueError, match="file:///absolute"):
        open_storage("file://elsewhere/m", secret=SECRET)
    with pytest.raises(ValueError, match="no media storage"):
        open_storage("ftp://x/y")
    assert redact_url("s3://AKIA:secret@bucket?endpoint_url=x") == "s3://***@bucket?endpoint_url=x"
    assert redact_url("file:///m") == "file:///m"
