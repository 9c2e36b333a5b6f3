"""BLAKE2b and SHA-256 without hashlib's OpenSSL start-up.

`import hashlib` loads OpenSSL's libcrypto (about 2 ms CPU), and `socpipe rules lint` needs only two
digests that CPython builds in: BLAKE2b (hashlib's blake2b *is* `_blake2.blake2b`) and SHA-256 (the
built-in module hashlib itself falls back to without OpenSSL: `_sha256` on 3.11, `_sha2` from 3.12).
The digests are the same; a build without those modules gets hashlib's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # typed as hashlib's: the same functions
    from hashlib import blake2b, sha256
else:
    try:
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - every CPython since 3.6 has it
        from hashlib import blake2b
    try:
        from _sha2 import sha256  # Python 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # Python 3.11
        except ImportError:  # pragma: no cover
            from hashlib import sha256

__all__ = ["blake2b", "sha256"]
