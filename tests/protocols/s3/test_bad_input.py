"""Bad input gets its S3 error, nothing is stored half-way, and the server keeps serving."""

from __future__ import annotations

import hashlib
import http.client
import socket
import time
from dataclasses import dataclass
from typing import Any

import botocore.auth
import pytest
import requests
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from core.store import open_store
from protocols.s3 import sigv4
from protocols.s3.auth import STREAM_SIGNED, parse_query
from tests.protocols.s3.conftest import S3Server


@dataclass
class Reply:
    status_code: int
    text: str


def signed(srv: S3Server, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
           payload_hash: str | None = None, skew: float = 0.0) -> Reply:
    """Send a SigV4-signed request with the path exactly as given (no client-side normalisation).

    Signed by protocols.s3.sigv4, which tests/protocols/s3/test_sigv4.py checks against AWS's vectors.
    """
    host = srv.endpoint.split("//")[1]
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + skew))
    raw_path, _, query = path.partition("?")
    h = {k.lower(): [v] for k, v in (headers or {}).items()}
    h.update({"host": [host], "x-amz-date": [amz_date],
              "x-amz-content-sha256": [payload_hash or hashlib.sha256(body).hexdigest()]})
    names = sorted(h)
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = sigv4.signing_key(srv.secret_key, amz_date[:8], "us-east-1", "s3")
    cq = sigv4.canonical_query(parse_query(query))
    creq = sigv4.canonical_request(method, raw_path, cq, h, names, h["x-amz-content-sha256"][0])
    sig = sigv4.sign(key, sigv4.string_to_sign(amz_date, scope, creq))
    out = {k: v[0] for k, v in h.items()}
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={srv.access_key}/{scope},SignedHeaders={';'.join(names)},"
                            f"Signature={sig}")
    conn = http.client.HTTPConnection(host, timeout=30)
    try:
        conn.request(method, path, body=body, headers=out)
        r = conn.getresponse()
        return Reply(r.status, r.read().decode())
    finally:
        conn.close()


def code_of(r: Reply | requests.Response) -> str:
    return r.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in r.text else ""


def test_wrong_secret_and_unknown_key(s3: S3Server, bucket: str) -> None:
    import boto3
    bad = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                       aws_secret_access_key="wrong", region_name="us-east-1")
    with pytest.raises(ClientError) as e:
        bad.put_object(Bucket=bucket, Key="x", Body=b"1")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    nokey = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id="TSRNOBODY",
                         aws_secret_access_key="x", region_name="us-east-1")
    with pytest.raises(ClientError) as e:
        nokey.list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    r = requests.put(f"{s3.endpoint}/{bucket}/anon", data=b"x", timeout=10)
    assert r.status_code == 403 and code_of(r) == "AccessDenied"
    assert "<RequestId>" in r.text and "<Resource>" in r.text


def test_skewed_clock(s3: S3Server, bucket: str) -> None:
    assert signed(s3, "GET", f"/{bucket}?list-type=2", skew=60).status_code == 200
    for skew in (-3600, 3600):
        r = signed(s3, "GET", f"/{bucket}?list-type=2", skew=skew)
        assert r.status_code == 403 and code_of(r) == "RequestTimeTooSkewed"


def test_payload_hash_mismatch_stores_nothing(s3: S3Server, bucket: str) -> None:
    r = signed(s3, "PUT", f"/{bucket}/h", b"actual body", payload_hash=hashlib.sha256(b"other").hexdigest())
    assert r.status_code == 400 and code_of(r) == "XAmzContentSHA256Mismatch"
    assert signed(s3, "HEAD", f"/{bucket}/h").status_code == 404


def test_malformed_xml(s3: S3Server, bucket: str) -> None:
    for body in (b"<Delete><Object><Key>a</Key>", b"not xml at all",
                 b'<!DOCTYPE x [<!ENTITY e "boom">]><Delete><Object><Key>&e;</Key></Object></Delete>'):
        r = signed(s3, "POST", f"/{bucket}?delete", body)
        assert r.status_code == 400 and code_of(r) == "MalformedXML", body
    up = signed(s3, "POST", f"/{bucket}/mp?uploads").text.split("<UploadId>")[1].split("<")[0]
    r = signed(s3, "POST", f"/{bucket}/mp?uploadId={up}", b"<CompleteMultipartUpload><Part>")
    assert code_of(r) == "MalformedXML"


def test_path_escaping_keys_are_refused(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    for key in ("../escape", "a/../../etc/passwd", "a//b", "./x", "a/./b", "..", "x/.."):
        r = signed(s3, "PUT", f"/{bucket}/{key}", b"data")
        assert r.status_code == 400 and code_of(r) == "InvalidArgument", key
    r = signed(s3, "PUT", f"/{bucket}/%2e%2e/%2e%2e/etc", b"data")
    assert r.status_code == 400 and code_of(r) == "InvalidArgument"
    r = signed(s3, "PUT", f"/{bucket}/{'x' * 256}", b"data")
    assert code_of(r) == "KeyTooLongError"
    c.put_object(Bucket=bucket, Key="file", Body=b"1")
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=bucket, Key="file/under", Body=b"2")
    assert e.value.response["Error"]["Code"] == "InvalidArgument"
    with open_store(str(s3.data)) as st:
        names = sorted(e.name for e in st.fs.listdir(st.fs.root))
    assert not {"escape", "etc", "passwd", "x"} & set(names), {"escape", "etc", "passwd", "x"} & set(names)


def test_oversized_headers(s3: S3Server, bucket: str) -> None:
    r = signed(s3, "PUT", f"/{bucket}/meta", b"x", {f"x-amz-meta-k{i}": "v" * 100 for i in range(30)})
    assert r.status_code == 400 and code_of(r) == "MetadataTooLarge"
    r = signed(s3, "PUT", f"/{bucket}/meta", b"x", {f"x-custom-{i}": "v" * 1000 for i in range(20)})
    assert r.status_code in (400, 431)
    if r.status_code == 400:
        assert code_of(r) == "RequestHeaderSectionTooLarge"
    assert signed(s3, "HEAD", f"/{bucket}/meta").status_code == 404


def _raw(s3: S3Server, data: bytes) -> bytes:
    host, port = s3.endpoint.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_truncated_body_stores_nothing(s3: S3Server, bucket: str) -> None:
    body = b"z" * 1_000_000
    req = AWSRequest(method="PUT", url=f"{s3.endpoint}/{bucket}/trunc", data=body,
                     headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    botocore.auth.S3SigV4Auth(Credentials(s3.access_key, s3.secret_key), "s3", "us-east-1").add_auth(req)
    head = f"PUT /{bucket}/trunc HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in req.headers.items())
    head += f"Content-Length: {len(body)}\r\nHost: {s3.endpoint.split('//')[1]}\r\n\r\n"
    _raw(s3, head.encode() + body[:300_000])  # then the client goes away
    time.sleep(0.5)
    assert signed(s3, "HEAD", f"/{bucket}/trunc").status_code == 404
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # and we still serve


def test_signed_streaming_upload_and_tampering(s3: S3Server, bucket: str) -> None:
    def send(chunks: list[bytes], tamper: bool) -> Reply:
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        date = amz_date[:8]
        scope = f"{date}/us-east-1/s3/aws4_request"
        host = s3.endpoint.split("//")[1]
        total = sum(map(len, chunks))
        enc_len = sum(len(f"{len(c):x};chunk-signature={'0' * 64}\r\n") + len(c) + 2 for c in chunks)
        enc_len += len(f"0;chunk-signature={'0' * 64}\r\n\r\n")
        headers = {"host": [host], "x-amz-date": [amz_date], "x-amz-content-sha256": [STREAM_SIGNED],
                   "content-encoding": ["aws-chunked"], "x-amz-decoded-content-length": [str(total)],
                   "content-length": [str(enc_len)]}
        signed_h = sorted(headers)
        key = sigv4.signing_key(s3.secret_key, date, "us-east-1", "s3")
        creq = sigv4.canonical_request("PUT", f"/{bucket}/streamed", "", headers, signed_h, STREAM_SIGNED)
        seed = sigv4.sign(key, sigv4.string_to_sign(amz_date, scope, creq))
        body, prev = b"", seed
        for c in [*chunks, b""]:
            sig = sigv4.sign(key, sigv4.chunk_string(amz_date, scope, prev, hashlib.sha256(c).hexdigest()))
            body += f"{len(c):x};chunk-signature={sig}\r\n".encode() + (c.upper() if tamper and c else c) + b"\r\n"
            prev = sig
        out: dict[str, Any] = {k: v[0] for k, v in headers.items() if k != "host"}
        out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={s3.access_key}/{scope},SignedHeaders="
                                f"{';'.join(signed_h)},Signature={seed}")
        r = requests.put(f"{s3.endpoint}/{bucket}/streamed", data=body, headers=out, timeout=30)
        return Reply(r.status_code, r.text)
    chunks = [b"a" * 70000, b"b" * 1000]
    r = send(chunks, tamper=True)
    assert r.status_code == 403 and code_of(r) == "SignatureDoesNotMatch"
    assert signed(s3, "HEAD", f"/{bucket}/streamed").status_code == 404
    assert send(chunks, tamper=False).status_code == 200
    assert s3.client().get_object(Bucket=bucket, Key="streamed")["Body"].read() == b"".join(chunks)


def test_public_bucket_allows_anonymous_reads_only(s3: S3Server) -> None:
    c = s3.client()
    c.create_bucket(Bucket="public-one", ACL="public-read")
    c.put_object(Bucket="public-one", Key="open.txt", Body=b"everyone", ACL="public-read")
    c.put_object(Bucket="public-one", Key="closed.txt", Body=b"owner only")  # a bucket ACL lists, not reads
    assert requests.get(f"{s3.endpoint}/public-one/open.txt", timeout=10).content == b"everyone"
    assert requests.get(f"{s3.endpoint}/public-one/closed.txt", timeout=10).status_code == 403
    assert "open.txt" in requests.get(f"{s3.endpoint}/public-one?list-type=2", timeout=10).text
    r = requests.put(f"{s3.endpoint}/public-one/nope", data=b"x", timeout=10)
    assert r.status_code == 403
    grants = c.get_bucket_acl(Bucket="public-one")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    c.put_bucket_acl(Bucket="public-one", ACL="private")
    assert requests.get(f"{s3.endpoint}/public-one/open.txt", timeout=10).status_code == 403


def _trailer_upload(s3: S3Server, bucket: str, key: str, data: bytes, *, crc: str, bad_trailer_sig: bool) -> Reply:
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: signed chunks, then a signed checksum trailer."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    host = s3.endpoint.split("//")[1]
    mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    headers = {"host": [host], "x-amz-date": [amz_date], "x-amz-content-sha256": [mode],
               "content-encoding": ["aws-chunked"], "x-amz-decoded-content-length": [str(len(data))],
               "x-amz-trailer": ["x-amz-checksum-crc32"]}
    names = sorted(headers)
    key_b = sigv4.signing_key(s3.secret_key, amz_date[:8], "us-east-1", "s3")
    seed = sigv4.sign(key_b, sigv4.string_to_sign(
        amz_date, scope, sigv4.canonical_request("PUT", f"/{bucket}/{key}", "", headers, names, mode)))
    body, prev = b"", seed
    for c in (data[:65536], data[65536:], b""):
        sig = sigv4.sign(key_b, sigv4.chunk_string(amz_date, scope, prev, hashlib.sha256(c).hexdigest()))
        body += f"{len(c):x};chunk-signature={sig}\r\n".encode() + c + (b"\r\n" if c else b"")
        prev = sig
    trailer = f"x-amz-checksum-crc32:{crc}\n"
    tsig = sigv4.sign(key_b, sigv4.trailer_string(amz_date, scope, prev, hashlib.sha256(trailer.encode()).hexdigest()))
    if bad_trailer_sig:
        tsig = "0" * 64
    body += f"x-amz-checksum-crc32:{crc}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n".encode()
    out = {k: v[0] for k, v in headers.items() if k != "host"}
    out["Authorization"] = f"AWS4-HMAC-SHA256 Credential={s3.access_key}/{scope},SignedHeaders={';'.join(names)}," \
                           f"Signature={seed}"
    r = requests.put(f"{s3.endpoint}/{bucket}/{key}", data=body, headers=out, timeout=30)
    return Reply(r.status_code, r.text)


def test_signed_streaming_with_checksum_trailer(s3: S3Server, bucket: str) -> None:
    import base64
    import zlib
    data = b"t" * 70000 + b"u" * 33
    good = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    r = _trailer_upload(s3, bucket, "tr-bad-sig", data, crc=good, bad_trailer_sig=True)
    assert r.status_code == 403 and code_of(r) == "SignatureDoesNotMatch"
    r = _trailer_upload(s3, bucket, "tr-bad-crc", data, crc=base64.b64encode(b"\0\0\0\0").decode(),
                        bad_trailer_sig=False)
    assert r.status_code == 400 and code_of(r) == "BadDigest"
    for k in ("tr-bad-sig", "tr-bad-crc"):
        assert signed(s3, "HEAD", f"/{bucket}/{k}").status_code == 404
    assert _trailer_upload(s3, bucket, "tr-ok", data, crc=good, bad_trailer_sig=False).status_code == 200
    got = s3.client().get_object(Bucket=bucket, Key="tr-ok", ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got["ChecksumCRC32"] == good


def test_any_region_and_put_if_match(s3: S3Server, bucket: str) -> None:
    import boto3
    c = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                     aws_secret_access_key=s3.secret_key, region_name="ap-southeast-2")
    etag = c.put_object(Bucket=bucket, Key="cond", Body=b"v1")["ETag"]
    c.put_object(Bucket=bucket, Key="cond", Body=b"v2", IfMatch=etag)
    with pytest.raises(ClientError) as e:
        c.put_object(Bucket=bucket, Key="cond", Body=b"v3", IfMatch=etag)  # stale now
    assert e.value.response["Error"]["Code"] == "PreconditionFailed"
    assert c.get_object(Bucket=bucket, Key="cond")["Body"].read() == b"v2"
