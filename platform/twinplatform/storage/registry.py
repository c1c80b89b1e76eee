"""Store URL -> backend: schemes map to dotted factory paths, imported only when a URL needs them.

Adding a backend: implement `StorageBackend` in `twinplatform/storage/<scheme>.py` with a
`from_url(url, options)` classmethod, add one line to BACKENDS, and pass
tests/contract/test_storage_backend.py.
Importing this module does not import boto3 (the S3 backend loads only for an s3:// URL).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from twinplatform.errors import ConfigError
from twinplatform.storage.base import StorageBackend

if TYPE_CHECKING:
    from twinplatform.storage.s3 import S3Options

#: URL scheme -> "module:Class.factory"; the factory takes (url, options for that scheme or None)
BACKENDS: dict[str, str] = {
    "file": "twinplatform.storage.local:LocalBackend.from_url",
    "s3": "twinplatform.storage.s3:S3Backend.from_url",
}

BackendFactory = Callable[[str, object], StorageBackend]


def redact_url(url: str) -> str:
    """`url` with any user:password@ part replaced by ***@, for error messages."""
    scheme, separator, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if separator and "@" in netloc:
        return f"{scheme}://***@{netloc.rpartition('@')[2]}{slash}{path}"
    return url


def _supported() -> str:
    return ", ".join(f"{scheme}://" for scheme in sorted(BACKENDS))


def _load(dotted: str) -> BackendFactory:
    module_name, _, attribute_path = dotted.partition(":")
    target: object = importlib.import_module(module_name)
    for attribute in attribute_path.split("."):
        target = getattr(target, attribute)
    return cast(BackendFactory, target)


def open_backend(url: str, s3_options: S3Options | None = None) -> StorageBackend:
    """The backend for a store URL: `file:///abs/dir`, `s3://bucket` or `s3://bucket/some/prefix`.

    `s3_options` (endpoint, credentials, transfer tuning) is used for s3:// URLs and ignored otherwise.
    Raises ConfigError for an unknown scheme or a malformed URL, listing the supported schemes.
    No network access happens here: call `check_access()` on the result to validate the store.
    """
    scheme = urlsplit(url).scheme if isinstance(url, str) and "://" in url else ""
    if scheme not in BACKENDS:
        shown = f"scheme {scheme!r}" if scheme else "no scheme"
        raise ConfigError(
            f"store URL {redact_url(url)!r} has {shown}: supported are {_supported()} "
            "(e.g. file:///srv/twins or s3://bucket/prefix); fix PLATFORM_STORE_URL"
        )
    options_by_scheme: dict[str, object | None] = {"s3": s3_options}
    factory = _load(BACKENDS[scheme])
    try:
        return factory(url, options_by_scheme.get(scheme))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (supported store URLs: {_supported()})") from exc
