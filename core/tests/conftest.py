import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: object) -> None:
    """The role fixtures create five users; PBKDF2 would spend seconds hashing their passwords."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
