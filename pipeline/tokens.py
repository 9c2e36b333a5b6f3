"""Bearer tokens of the SOC's own services (analysts' triage tokens, agencies' enrolment tokens).

A token is shown once when it is made and stored only as its digest; a presented token is looked up
by its digest. Tokens are random (`secrets.token_urlsafe`, 192 bits or more), so a plain SHA-256 needs
no salt or slow hash, and a dictionary or index lookup by digest leaks nothing useful through timing.
"""

from __future__ import annotations

import hashlib


def token_digest(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()
