"""Provider secrets at rest: a real Fernet key from the settings, refused if malformed."""

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError

from winback.platform.crypto import SecretsKeyError, decrypt, encrypt
from winback.platform.settings import Settings


def test_a_configured_key_encrypts_and_another_key_cannot_read_it() -> None:
    mine = Settings(secrets_key=SecretStr(Fernet.generate_key().decode()))
    theirs = Settings(secrets_key=SecretStr(Fernet.generate_key().decode()))

    token = encrypt(mine, "SG.very-secret")

    assert "very-secret" not in token
    assert decrypt(mine, token) == "SG.very-secret"
    with pytest.raises(SecretsKeyError):
        decrypt(theirs, token)


def test_a_malformed_key_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="must be a Fernet key"):
        Settings(secrets_key=SecretStr("not-a-key"))
