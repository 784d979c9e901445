import pytest


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """The role users of the root conftest hash passwords; PBKDF2 costs ~0.2 s per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
