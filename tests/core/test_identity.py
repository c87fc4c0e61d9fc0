import pytest

from core import identity
from core.errors import Exists, InvalidArgument, NotFound
from core.store import Store


def test_md4_vectors() -> None:  # RFC 1320 test suite
    assert identity.md4(b"").hex() == "31d6cfe0d16ae931b73c59d7e0c089c0"
    assert identity.md4(b"message digest").hex() == "d9130a8164549fe818874806e1c7014b"
    assert identity.md4(b"1234567890" * 8).hex() == "e33b4ddc9c38f2199c3e7b164fcc0536"


def test_users(mem_store: Store) -> None:
    u = identity.add_user(mem_store.meta, "alice", "pw")
    assert u.uid >= 1000 and u.access_key.startswith("TSR") and len(u.secret_key) >= 30
    assert u.nt_hash == identity.nt_hash("pw")
    assert identity.check_password(u.pw_hash, "pw") and not identity.check_password(u.pw_hash, "no")
    b = identity.add_user(mem_store.meta, "bob")
    assert b.uid == u.uid + 1 and b.nt_hash is None
    assert identity.user_by_access_key(mem_store.meta, u.access_key) == u
    with pytest.raises(Exists):
        identity.add_user(mem_store.meta, "alice")
    with pytest.raises(InvalidArgument):
        identity.add_user(mem_store.meta, "bad name")
    assert [x.name for x in identity.list_users(mem_store.meta)] == ["alice", "bob"]
    identity.remove_user(mem_store.meta, "alice")
    with pytest.raises(NotFound):
        identity.remove_user(mem_store.meta, "alice")
