"""A KMS key's asymmetric key pair, made when first used.

moto makes an RSA-2048 key pair for every key it creates, a symmetric one included (where only Sign, Verify
and GetPublicKey of an asymmetric key would read it): a sixth of a second of CPU for each CreateKey, in the
local cloud and in every test that creates a key. Here the pair is made on its first use, with the same
key spec, so what Sign, Verify and GetPublicKey answer is unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

from local_cloud.once import once


class LazyKeyPair:
    """Stands in for moto's private key object; makes the real one on first attribute access."""

    def __init__(self, make: Any, key_spec: str) -> None:
        self._make, self._key_spec = make, key_spec
        self._key: Any = None
        self._lock = threading.Lock()

    @property
    def made(self) -> bool:
        return self._key is not None

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._key is None:
                self._key = self._make(self._key_spec)
        return getattr(self._key, name)


@once
def install() -> None:
    """Make moto's KMS keys create their key pair lazily (idempotent)."""
    from moto.kms import models

    make = models.generate_private_key
    models.generate_private_key = lambda key_spec: LazyKeyPair(make, key_spec)  # type: ignore[assignment]
