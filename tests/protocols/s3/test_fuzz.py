"""Fuzzing the sans-IO S3 parsers: whatever a client sends, they answer with an S3Error or a value, never
another exception (which would be a 500 and a traceback).  Bounded example counts keep this under ~20 s."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.s3 import keys, limits, sigv4, xmlio
from protocols.s3.auth import authenticate, parse_query
from protocols.s3.chunked import ChunkedDecoder, ChunkSigner
from protocols.s3.errors import S3Error
from protocols.s3.router import Route, route

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_700_000_000.0

# what the app hands the parsers: the request line and headers decoded as latin-1
latin1 = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=80)
token = st.sampled_from(["", "%", "%f", "%ff", "%c3%a9", "%2F", "/", "a", "..", "?", "&", "=", "+", ";", ",", " ",
                         "\x00", "\r\n", "é", "AKIA", "20240101T000000Z", "aws4_request", "us-east-1", "s3"])
mixed = st.lists(st.one_of(token, latin1), max_size=8).map("".join)


@dataclass
class _Key:
    secret_key: str = "secret"


def _lookup(ak: str) -> _Key | None:
    return _Key() if ak.startswith("AK") else None


def _only_s3_errors(fn: object, *args: object, **kw: object) -> None:
    try:
        fn(*args, **kw)  # type: ignore[operator]
    except S3Error:
        pass


@FAST
@given(method=st.sampled_from(["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "get", ""]),
       path=mixed, query=st.dictionaries(mixed, mixed, max_size=4), host=mixed,
       domain=st.sampled_from([None, "s3.local", ""]))
def test_router(method: str, path: str, query: dict[str, str], host: str, domain: str | None) -> None:
    _only_s3_errors(route, method, path, query, host, domain=domain)


@FAST
@given(raw=mixed)
def test_parse_query(raw: str) -> None:
    _only_s3_errors(parse_query, raw)


_v4_authz = st.builds(
    lambda cred, signed, sig, extra: f"AWS4-HMAC-SHA256 Credential={cred},SignedHeaders={signed},Signature={sig}"
                                     f"{extra}",
    cred=st.one_of(mixed, st.builds(lambda d, r: f"AKX/{d}/{r}/s3/aws4_request",
                                    st.one_of(st.just("20231114"), mixed), st.one_of(st.just("us-east-1"), mixed))),
    signed=st.sampled_from(["host", "host;x-amz-date", "", ";;", "host;x-amz-content-sha256;x-amz-date"]),
    sig=st.one_of(st.sampled_from(["0" * 64, "é" * 64, "", "\x00"]), mixed), extra=st.one_of(st.just(""), mixed))
_headers = st.fixed_dictionaries(
    {"host": st.lists(mixed, min_size=1, max_size=1)},
    optional={"authorization": st.lists(st.one_of(_v4_authz, mixed.map(lambda s: "AWS " + s), mixed),
                                        min_size=1, max_size=2),
              "x-amz-date": st.lists(st.one_of(mixed, st.just("20231114T221320Z")), min_size=1, max_size=1),
              "date": st.lists(st.one_of(mixed, st.just("Tue, 14 Nov 2023 22:13:20 GMT")), min_size=1, max_size=1),
              "x-amz-content-sha256": st.lists(st.one_of(mixed, st.sampled_from(
                  ["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "e" * 64])), min_size=1, max_size=1)})
_presigned = st.one_of(
    mixed,
    st.builds(lambda c, d, e, s, g: f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={c}&X-Amz-Date={d}"
                                    f"&X-Amz-Expires={e}&X-Amz-SignedHeaders={s}&X-Amz-Signature={g}",
              mixed, st.one_of(mixed, st.just("20231114T221320Z")), mixed, mixed, mixed),
    st.builds(lambda a, s, e: f"AWSAccessKeyId={a}&Signature={s}&Expires={e}", mixed, mixed, mixed))


@FAST
@given(method=st.sampled_from(["GET", "PUT"]), path=mixed, query=_presigned, headers=_headers,
       prefix=st.sampled_from(["", "/bucket"]))
def test_authenticate(method: str, path: str, query: str, headers: dict[str, list[str]], prefix: str) -> None:
    _only_s3_errors(authenticate, method, path, query, headers, _lookup, now=NOW,  # type: ignore[arg-type]
                    resource_prefix=prefix)


@FAST
@given(authz=_v4_authz, sha=st.sampled_from(["UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "e" * 64,
                                             "é" * 64, "0x" + "e" * 62, ""]),
       date=st.sampled_from(["20231114T221320Z", "20231114T22132OZ", "99999999T999999Z", ""]), path=mixed)
def test_sigv4_header_past_the_preliminaries(authz: str, sha: str, date: str, path: str) -> None:
    """Well-formed enough to reach signature checking (known key, fresh date)."""
    headers = {"host": ["h"], "authorization": [authz], "x-amz-date": [date], "x-amz-content-sha256": [sha]}
    _only_s3_errors(authenticate, "PUT", path, "", headers, _lookup, now=NOW)  # type: ignore[arg-type]


@FAST
@given(method=st.sampled_from(["GET", "PUT"]), headers=_headers, date=mixed)
def test_sigv2_string_to_sign(method: str, headers: dict[str, list[str]], date: str) -> None:
    sigv4.v2_string_to_sign(method, headers, date, "/b/k", parse_query("acl&uploadId=1"))


_chunk = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda n, ext, data: f"{n}{ext}\r\n".encode() + data + b"\r\n",
              st.sampled_from(["0", "1", "a", "10", "ffffffffffffffffff", "-1", "0x1", "1_0", "+1", " 1", "", "g"]),
              st.sampled_from(["", ";chunk-signature=" + "0" * 64, ";chunk-signature=é", ";x"]),
              st.binary(max_size=32)),
    st.sampled_from([b"0\r\n\r\n", b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n", b"\r\n",
                     b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n", b"no-colon\r\n\r\n"]))


@FAST
@given(parts=st.lists(_chunk, max_size=8), signed=st.booleans(), cuts=st.lists(st.integers(0, 200), max_size=4))
def test_chunked_decoder(parts: list[bytes], signed: bool, cuts: list[int]) -> None:
    data = b"".join(parts)
    signer = ChunkSigner(hashlib.sha256(b"k").digest(), "20231114T221320Z", "scope", "0" * 64) if signed else None
    d = ChunkedDecoder(signer)
    try:
        prev = 0
        for c in [*sorted(cuts), len(data)]:
            d.feed(data[prev:c])
            prev = max(prev, c)
        d.finish()
    except S3Error:
        pass


_xml = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda enc, decl, body: (f'<?xml version="1.0" encoding="{enc}"?>{decl}{body}').encode(
        "utf-16" if enc == "UTF-16" else "utf-8", "surrogatepass"),
        st.sampled_from(["UTF-8", "UTF-16", "ISO-8859-1", "bogus"]),
        st.sampled_from(["", '<!DOCTYPE d [<!ENTITY e "x">]>', '<!DOCTYPE d SYSTEM "file:///etc/passwd">',
                         '<!DOCTYPE d [<!ENTITY % p "x"> %p;]>']),
        st.one_of(mixed, st.just("<Delete><Object><Key>&e;</Key></Object></Delete>"),
                  st.just("<a xmlns='x'><b>t</b></a>"))))


@FAST
@given(body=_xml)
def test_xml_parse(body: bytes) -> None:
    try:
        root = xmlio.parse(body)
    except S3Error:
        return
    assert "&" not in "".join(root.itertext()) or b"&amp;" in body or b"&#" in body


@FAST
@given(op=st.sampled_from(["GetObject", "HeadObject", "ListObjects", "ListMultipartUploads", "ListParts"]),
       q=st.dictionaries(st.sampled_from([*limits.NUMERIC, "response-content-type", "response-expires",
                                          "encoding-type", "prefix"]), mixed, max_size=4),
       anonymous=st.booleans())
def test_request_limits(op: str, q: dict[str, str], anonymous: bool) -> None:
    _only_s3_errors(limits.check, Route(op, "b", "k"), q, anonymous=anonymous)


@FAST
@given(name=mixed)
def test_bucket_and_key_names(name: str) -> None:
    keys.valid_bucket(name)
    _only_s3_errors(keys.key_parts, name)


def test_non_ascii_chunk_signature_is_a_mismatch_not_a_crash() -> None:
    signer = ChunkSigner(hashlib.sha256(b"k").digest(), "20231114T221320Z", "scope", "0" * 64)
    d = ChunkedDecoder(signer)
    try:
        d.feed(b"1;chunk-signature=" + "é".encode("latin-1") * 64 + b"\r\nx\r\n")
    except S3Error as e:
        assert e.code == "SignatureDoesNotMatch"
    else:
        raise AssertionError("a bad chunk signature was accepted")
