"""The credential cipher across a secret-key rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken

from shared.crypto import CredentialCipher

SECRET = {"apiKey": "SG.x"}


def test_the_current_key_encrypts_and_previous_keys_still_decrypt() -> None:
    old = CredentialCipher("old")
    token = old.encrypt(SECRET)
    rotating = CredentialCipher("new", previous=["old"])
    assert rotating.decrypt(token) == SECRET
    assert not rotating.is_current(token)
    fresh = rotating.encrypt(SECRET)
    assert rotating.is_current(fresh)
    with pytest.raises(InvalidToken):
        old.decrypt(fresh)


def test_reencrypt_leaves_a_token_the_new_key_alone_reads() -> None:
    token = CredentialCipher("old").encrypt(SECRET)
    rewritten = CredentialCipher("new", previous=["old"]).reencrypt(token)
    assert CredentialCipher("new").decrypt(rewritten) == SECRET
    with pytest.raises(InvalidToken):
        CredentialCipher("new").reencrypt(CredentialCipher("other").encrypt(SECRET))
