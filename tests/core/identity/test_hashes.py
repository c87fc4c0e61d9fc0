from core import identity


def test_md4_vectors() -> None:  # RFC 1320 test suite
    assert identity.md4(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0"
    assert identity.md4(b"message digest").hex() == "d9130a8164549fe818874806e1c7014b"
    assert identity.md4(b"1234567890" * 8).hex() == "e33b4ddc9c38f2199c3e7b164fcc0536"


def test_nt_hash_and_password_hash() -> None:
    assert identity.nt_hash("password").hex() == "8846f7eaee8fb117ad06bdd830b7586c"
    h = identity.hash_password("pw")
    assert h.startswith("scrypt$") and h != identity.hash_password("pw")  # salted
    assert identity.check_password(h, "pw") and not identity.check_password(h, "pw2")
    assert not identity.check_password(None, "pw") and not identity.check_password("scrypt$x", "pw")
