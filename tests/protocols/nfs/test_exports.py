"""Exports: validation with clear messages, client matching, ids, the export serving a MOUNT path."""

from __future__ import annotations

import pytest

from protocols.nfs.exports import Export, check_unique, export_id, find_export, normalise_path


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"path": "data"}, "must be absolute"),
    ({"path": ""}, "non-empty"),
    ({"path": "/a/../b"}, "may not contain '..'"),
    ({"path": "/a\0b"}, "NUL"),
    ({"clients": []}, "clients is empty"),
    ({"clients": ["example.com"]}, "host names are not supported"),
    ({"clients": ["10.0.0.0/33"]}, "is not an IP address"),
    ({"clients": [""]}, "must be an address"),
    ({"access": "rx"}, "access must be one of rw, ro"),
    ({"squash": "no_root"}, "squash must be one of none, root, all"),
    ({"anonuid": -1}, "anonuid must be an integer from 0 to 4294967294"),
    ({"anonuid": 2**32 - 1}, "anonuid must be"),
    ({"anongid": "65534"}, "anongid must be"),
    ({"anongid": True}, "anongid must be"),
])
def test_build_rejects_with_a_clear_message(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"path": "/data", "clients": ["*"], **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Export.build(**args)  # type: ignore[arg-type]


def test_constructor_validates_too() -> None:
    with pytest.raises(ValueError, match="squash"):
        Export("/x", ("*",), "rw", "sometimes")
    e = Export("//x//y/", ("10.1.2.3/8",))
    assert (e.path, e.clients, e.access, e.squash, e.anonuid, e.anongid) == ("/x/y", ("10.0.0.0/8",), "rw", "root",
                                                                              65534, 65534)


def test_defaults_and_normalised_fields() -> None:
    e = Export.build("/", "*")
    assert e.clients == ("*",) and e.path == "/" and not e.read_only
    assert Export.build("/d", ["::1", "fd00::/8", "127.0.0.1"], access="ro").clients == ("::1", "fd00::/8",
                                                                                        "127.0.0.1")
    assert Export.build("/d", ["*"], access="ro").read_only
    assert Export.build("/d", ["*"], anonuid=0, anongid=2**32 - 2).anongid == 2**32 - 2


def test_id_is_a_stable_u32_of_the_normalised_path() -> None:
    a, b = Export.build("/data/"), Export.build("//data", ["10.0.0.0/8"], access="ro", squash="all")
    assert a.id == b.id == export_id("/data") == 151282615  # crc32(b"/data"): handles depend on this value
    assert a.id != Export.build("/data2").id
    assert 0 <= Export.build("/" + "x" * 300).id < 2**32


def test_normalise_path() -> None:
    assert normalise_path("/./a//b/.") == "/a/b"
    assert normalise_path("///") == "/"


@pytest.mark.parametrize(("clients", "peer", "ok"), [
    (["*"], "203.0.113.9", True),
    (["*"], "2001:db8::1", True),
    (["*"], "::ffff:192.0.2.1", True),
    (["127.0.0.1"], "127.0.0.1", True),
    (["127.0.0.1"], "127.0.0.2", False),
    (["127.0.0.1"], "::ffff:127.0.0.1", True),   # a dual-stack socket's view of an IPv4 peer
    (["10.0.0.0/8"], "10.255.0.1", True),
    (["10.0.0.0/8"], "11.0.0.1", False),
    (["10.0.0.0/8"], "::ffff:10.9.9.9", True),
    (["::1"], "::1", True),
    (["::1"], "127.0.0.1", False),
    (["fe80::/10"], "fe80::1%eth0", True),
    (["2001:db8::/32"], "2001:db8:1::5", True),
    (["2001:db8::/32"], "2001:db9::5", False),
    (["192.168.0.0/16", "10.0.0.1"], "10.0.0.1", True),
    (["192.168.0.0/16", "10.0.0.1"], "garbage", False),
])
def test_client_matching(clients: list[str], peer: str, ok: bool) -> None:
    assert Export.build("/d", clients).allows(peer) is ok


def test_find_export_longest_allowed_path() -> None:
    ex = [Export.build("/", ["10.0.0.0/8"]), Export.build("/data", ["127.0.0.1"]),
          Export.build("/data/deep", ["127.0.0.1"])]
    assert find_export(ex, "/data/deep/x", "127.0.0.1")[0] == ex[2]
    assert find_export(ex, "/data/deeper", "127.0.0.1")[0] == ex[1]  # component boundaries, not prefixes
    assert find_export(ex, "/data", "127.0.0.1")[0] == ex[1]
    assert find_export(ex, "/data/deep", "10.1.1.1")[0] == ex[0]
    assert find_export(ex, "/other", "127.0.0.1") == (None, True)
    assert find_export(ex[1:], "/other", "127.0.0.1") == (None, False)
    assert find_export(ex[1:], "/database", "127.0.0.1") == (None, False)
    assert find_export([], "/", "127.0.0.1") == (None, False)


def test_check_unique() -> None:
    check_unique([Export.build("/a"), Export.build("/b")])
    with pytest.raises(ValueError, match="listed twice"):
        check_unique([Export.build("/a"), Export.build("/a/", ["10.0.0.1"])])
    a, b = "/e19195", "/e12006000"  # found by a birthday search over /e<N>
    assert export_id(a) == export_id(b)
    with pytest.raises(ValueError, match="same id"):
        check_unique([Export.build(a), Export.build(b)])
