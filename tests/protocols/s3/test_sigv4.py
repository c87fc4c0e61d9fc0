"""Sans-IO checks of the signing code against AWS's published examples."""

from __future__ import annotations

import calendar
import time

import pytest

from core.fs import Cred
from core.identity import KeyMatch, User
from protocols.s3.auth import STREAM_SIGNED, authenticate
from protocols.s3.chunked import ChunkedDecoder
from protocols.s3.errors import S3Error

AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
USER = KeyMatch(User("example", 1000, 1000, (), frozenset(), False, 1000, "S-1-5-21-1-2-3-1000", 0), AK, SK,
                Cred(1000, 1000, name="example"))
NOW = calendar.timegm(time.strptime("20130524T000000Z", "%Y%m%dT%H%M%SZ"))
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def lookup(ak: str) -> User | None:
    return USER if ak == AK else None


def test_get_object_header_example() -> None:
    # "GET Object" example of the SigV4 header-auth documentation
    headers = {
        "host": ["examplebucket.s3.amazonaws.com"], "range": ["bytes=0-9"], "x-amz-content-sha256": [EMPTY],
        "x-amz-date": ["20130524T000000Z"],
        "authorization": [f"AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,"
                          "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                          "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"]}
    a = authenticate("GET", "/test.txt", "", headers, lookup, now=NOW)
    assert a.user == USER and a.payload == EMPTY
    headers["range"] = ["bytes=0-10"]
    with pytest.raises(S3Error) as e:
        authenticate("GET", "/test.txt", "", headers, lookup, now=NOW)
    assert e.value.code == "SignatureDoesNotMatch"
    with pytest.raises(S3Error) as e:
        authenticate("GET", "/test.txt", "", headers, lookup, now=NOW + 3600)
    assert e.value.code == "RequestTimeTooSkewed"


def test_presigned_example() -> None:
    q = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
         "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
         "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    headers = {"host": ["examplebucket.s3.amazonaws.com"]}
    assert authenticate("GET", "/test.txt", q, headers, lookup, now=NOW + 60).user == USER
    with pytest.raises(S3Error) as e:
        authenticate("GET", "/test.txt", q, headers, lookup, now=NOW + 86401)
    assert e.value.code == "AccessDenied" and "expired" in e.value.message


def _streaming_example() -> tuple[dict[str, list[str]], bytes]:
    headers = {
        "host": ["s3.amazonaws.com"], "x-amz-date": ["20130524T000000Z"],
        "x-amz-storage-class": ["REDUCED_REDUNDANCY"], "x-amz-content-sha256": [STREAM_SIGNED],
        "content-encoding": ["aws-chunked"], "x-amz-decoded-content-length": ["66560"],
        "content-length": ["66824"],
        "authorization": [f"AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders="
                          "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                          "x-amz-decoded-content-length;x-amz-storage-class,"
                          "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"]}
    body = (b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
            + b"a" * 65536 + b"\r\n"
            + b"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
            + b"a" * 1024 + b"\r\n"
            + b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n")
    return headers, body


def test_streaming_chunked_example() -> None:
    headers, body = _streaming_example()
    assert len(body) == 66824
    a = authenticate("PUT", "/examplebucket/chunkObject.txt", "", headers, lookup, now=NOW)
    assert a.signer is not None
    dec = ChunkedDecoder(a.signer)
    out = b"".join(b"".join(dec.feed(body[i:i + 999])) for i in range(0, len(body), 999))
    dec.finish()
    assert out == b"a" * 66560


def test_streaming_chunk_tampering_is_caught() -> None:
    headers, body = _streaming_example()
    a = authenticate("PUT", "/examplebucket/chunkObject.txt", "", headers, lookup, now=NOW)
    bad = body.replace(b"a" * 1024, b"a" * 1023 + b"b")
    dec = ChunkedDecoder(a.signer)
    with pytest.raises(S3Error) as e:
        dec.feed(bad)
    assert e.value.code == "SignatureDoesNotMatch"


def test_unsigned_trailer_decoding_and_truncation() -> None:
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n"
    dec = ChunkedDecoder()
    assert b"".join(dec.feed(body)) == b"hello world"
    dec.finish()
    assert dec.trailers == {"x-amz-checksum-crc32": "DUoRhQ=="}
    cut = ChunkedDecoder()
    cut.feed(body[:12])
    with pytest.raises(S3Error) as e:
        cut.finish()
    assert e.value.code == "IncompleteBody"
    with pytest.raises(S3Error):
        ChunkedDecoder().feed(b"zz\r\n")


def test_unknown_key_and_malformed_header() -> None:
    with pytest.raises(S3Error) as e:
        authenticate("GET", "/", "", {"authorization": ["AWS4-HMAC-SHA256 Credential=NOPE/20130524/us-east-1/s3/"
                                                        "aws4_request,SignedHeaders=host,Signature=00"],
                                      "x-amz-date": ["20130524T000000Z"], "x-amz-content-sha256": [EMPTY]},
                     lookup, now=NOW)
    assert e.value.code == "InvalidAccessKeyId"
    with pytest.raises(S3Error) as e:
        authenticate("GET", "/", "", {"authorization": ["AWS4-HMAC-SHA256 garbage"]}, lookup, now=NOW)
    assert e.value.code == "AuthorizationHeaderMalformed"
    assert authenticate("GET", "/", "", {}, lookup).user is None  # anonymous
