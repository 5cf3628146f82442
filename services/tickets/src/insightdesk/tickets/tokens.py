"""API tokens: issued once, stored only as their SHA-256.

A token is 256 random bits, so a plain (unsalted) SHA-256 is enough to make the stored value
useless to whoever reads the table, and it lets a request's token be found by an index lookup.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "idk_"


def issue_token() -> str:
    """A new API token (shown to its owner once)."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored and looked up: the token's SHA-256 in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
