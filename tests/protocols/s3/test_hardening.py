"""Regression tests for the S3 hardening items of issue 9, each probing the server as an attacker would."""

from __future__ import annotations

import calendar
import hashlib
import http.client
import select
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from protocols.s3 import sigv4
from protocols.s3.auth import UNSIGNED, authenticate
from tests.protocols.s3.conftest import S3Server

MIB = 1024 * 1024


@dataclass
class Reply:
    status: int
    text: str

    @property
    def code(self) -> str:
        return self.text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in self.text else ""


def _hostport(srv: S3Server) -> tuple[str, int]:
    host, port = srv.endpoint.split("//")[1].rsplit(":", 1)
    return host, int(port)


def _canonical_query(raw: str) -> str:
    """AWS's canonical query string, byte-wise (so that it also covers values that are not UTF-8)."""
    def enc(s: str) -> str:
        return quote(unquote_to_bytes(s), safe="-_.~")
    pairs = sorted((enc(k), enc(v)) for k, _, v in (p.partition("=") for p in raw.split("&") if p))
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign(srv: S3Server, method: str, path: str, headers: dict[str, str] | None = None,
         payload: str = UNSIGNED, host: str | None = None, unsigned: tuple[str, ...] = ()) -> dict[str, str]:
    """SigV4 headers for ``path`` exactly as given (signed by protocols.s3.sigv4, checked against AWS's vectors
    in test_sigv4.py); headers named in ``unsigned`` are sent but left out of the signature."""
    host = host or srv.endpoint.split("//")[1]
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    raw_path, _, query = path.partition("?")
    h = {k.lower(): [v] for k, v in (headers or {}).items()}
    h.update({"host": [host], "x-amz-date": [amz_date], "x-amz-content-sha256": [payload]})
    names = sorted(k for k in h if k not in unsigned)
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = sigv4.signing_key(srv.secret_key, amz_date[:8], "us-east-1", "s3")
    creq = sigv4.canonical_request(method, raw_path, _canonical_query(query), h, names, payload)
    sig = sigv4.sign(key, sigv4.string_to_sign(amz_date, scope, creq))
    out = {k: v[0] for k, v in h.items()}
    out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={srv.access_key}/{scope},SignedHeaders={';'.join(names)},"
                            f"Signature={sig}")
    return out


def send(srv: S3Server, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
         **kw: Any) -> Reply:
    """A signed request over http.client, the path sent as given (no client-side normalisation)."""
    h = sign(srv, method, path, headers, payload=hashlib.sha256(body).hexdigest(), **kw)
    conn = http.client.HTTPConnection(*_hostport(srv), timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in h.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return Reply(r.status, r.read().decode())
    finally:
        conn.close()


def _read_reply(s: socket.socket) -> Reply:
    data = b""
    while b"\r\n\r\n" not in data:
        got = s.recv(65536)
        if not got:
            break
        data += got
    head, _, body = data.partition(b"\r\n\r\n")
    n = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
             0)
    while len(body) < n:
        got = s.recv(65536)
        if not got:
            break
        body += got
    return Reply(int(head.split()[1]), body.decode())


# -- 2. body caps ---------------------------------------------------------------------------
def test_acl_body_over_the_cap_is_refused_before_it_is_read(s3: S3Server, bucket: str) -> None:
    path = f"/{bucket}?acl"
    h = sign(s3, "PUT", path, {"x-amz-acl": "private", "content-length": str(64 * MIB)})
    s = socket.create_connection(_hostport(s3), timeout=10)
    s.sendall(f"PUT {path} HTTP/1.1\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in h.items()).encode()
              + b"\r\n" + b"<" * 65536)
    r = _read_reply(s)  # answered with 64 MiB - 64 KiB still unsent: nothing was waited for, nor buffered
    s.close()
    assert (r.status, r.code) == (400, "MaxMessageLengthExceeded")


def test_streamed_xml_body_over_the_cap_is_cut_off(s3: S3Server, bucket: str) -> None:
    path = f"/{bucket}?delete"
    h = sign(s3, "POST", path, {"transfer-encoding": "chunked"})
    s = socket.create_connection(_hostport(s3), timeout=10)
    s.sendall(f"POST {path} HTTP/1.1\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in h.items()).encode()
              + b"\r\n")
    sent, piece = 0, b"40000\r\n" + b"<" * 0x40000 + b"\r\n"
    r = None
    while sent < 64 * MIB:
        if select.select([s], [], [], 0)[0]:
            r = _read_reply(s)
            break
        try:
            s.sendall(piece)
        except OSError:
            r = _read_reply(s)
            break
        sent += 0x40000
    s.close()
    assert r is not None and (r.status, r.code) == (400, "MaxMessageLengthExceeded"), (sent, r)
    assert sent <= 8 * MIB


def test_policy_body_is_capped_at_20_kib(s3: S3Server, bucket: str) -> None:
    pad = " " * (21 * 1024)
    policy = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": '
              f'"s3:GetObject", "Resource": "arn:aws:s3:::{bucket}/*"{pad}}}]}}')
    r = send(s3, "PUT", f"/{bucket}?policy", policy.encode())
    assert (r.status, r.code) == (400, "MaxMessageLengthExceeded")


# -- 3. SigV4 dates in UTC, whatever the local time zone -------------------------------------
@dataclass
class _Key:
    secret_key: str


def test_sigv4_dates_are_utc_in_a_dst_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    sk = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    amz_date = "20240115T030000Z"  # January: daylight saving time in Sydney
    now = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    headers = {"host": ["h"], "x-amz-date": [amz_date], "x-amz-content-sha256": [UNSIGNED]}
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    key = sigv4.signing_key(sk, amz_date[:8], "us-east-1", "s3")
    names = sorted(headers)
    sig = sigv4.sign(key, sigv4.string_to_sign(amz_date, scope, sigv4.canonical_request(
        "GET", "/b/k", "", headers, names, UNSIGNED)))
    headers["authorization"] = [f"AWS4-HMAC-SHA256 Credential=AK/{scope},SignedHeaders={';'.join(names)},"
                                f"Signature={sig}"]
    monkeypatch.setenv("TZ", "Australia/Sydney")
    time.tzset()
    try:
        a = authenticate("GET", "/b/k", "", headers, lambda ak: _Key(sk) if ak == "AK" else None,  # type: ignore
                         now=now + 14 * 60)  # inside the 15 minutes allowed, an hour off would not be
        assert a.user is not None
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# -- 4. keys and query values must be UTF-8 ----------------------------------------------------
def test_keys_that_are_not_utf8_are_refused(s3: S3Server, bucket: str) -> None:
    r = send(s3, "PUT", f"/{bucket}/%ff", b"one")
    assert (r.status, r.code) == (400, "InvalidURI")
    r = send(s3, "GET", f"/{bucket}/%fe")
    assert (r.status, r.code) == (400, "InvalidURI")
    r = send(s3, "GET", f"/{bucket}?prefix=%ff")
    assert (r.status, r.code) == (400, "InvalidURI")
    keys = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert keys == []


# -- 5. virtual-host requests sign Host --------------------------------------------------------
def test_virtual_host_request_must_sign_host(s3: S3Server, bucket: str) -> None:
    vhost = f"{bucket}.s3.localtest:{_hostport(s3)[1]}"
    r = send(s3, "GET", "/", host=vhost, unsigned=("host",))
    assert (r.status, r.code) == (403, "SignatureDoesNotMatch")
    r = send(s3, "GET", "/", host=vhost)
    assert r.status == 200 and "<ListBucketResult" in r.text


# -- 6. XML without DTDs or entities, in every encoding ------------------------------------------
def test_utf16_delete_objects_with_an_entity_deletes_nothing(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    c.put_object(Bucket=bucket, Key="victim", Body=b"keep me")
    body = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE Delete [<!ENTITY e "victim">]>'
            "<Delete><Object><Key>&e;</Key></Object></Delete>").encode("utf-16")
    r = send(s3, "POST", f"/{bucket}?delete", body)
    assert (r.status, r.code) == (400, "MalformedXML")
    assert c.get_object(Bucket=bucket, Key="victim")["Body"].read() == b"keep me"


# -- 7. response-* overrides ------------------------------------------------------------------------
def test_crlf_in_a_response_override_is_refused(s3: S3Server, bucket: str) -> None:
    s3.client().put_object(Bucket=bucket, Key="k", Body=b"x")
    r = send(s3, "GET", f"/{bucket}/k?response-content-type=text/plain%0d%0aX-Injected:%20yes")
    assert (r.status, r.code) == (400, "InvalidArgument")
    r = send(s3, "GET", f"/{bucket}/k?response-content-disposition=attachment%3B%20filename%3Dk.txt")
    assert r.status == 200 and r.text == "x"


def test_anonymous_requests_may_not_override_response_headers(s3: S3Server, bucket: str) -> None:
    r = requests.get(f"{s3.endpoint}/{bucket}/k?response-content-type=text/html", timeout=10)
    assert r.status_code == 400 and "<Code>InvalidRequest</Code>" in r.text


# -- 8. malformed numbers are 400s; SigV2 presigned URLs live at most 7 days ---------------------------
@pytest.mark.parametrize("query", ["uploads&max-uploads=abc", "max-keys=abc", "list-type=2&max-keys=1x",
                                   "versions&max-keys=%C2%B2", "uploads&max-uploads=-1"])
def test_malformed_numbers_in_bucket_queries(s3: S3Server, bucket: str, query: str) -> None:
    r = send(s3, "GET", f"/{bucket}?{query}")
    assert (r.status, r.code) == (400, "InvalidArgument")


@pytest.mark.parametrize("query", ["uploadId=x&max-parts=abc", "uploadId=x&part-number-marker=abc",
                                   "partNumber=abc"])
def test_malformed_numbers_in_object_queries(s3: S3Server, bucket: str, query: str) -> None:
    s3.client().put_object(Bucket=bucket, Key="k", Body=b"x")
    r = send(s3, "GET", f"/{bucket}/k?{query}")
    assert (r.status, r.code) == (400, "InvalidArgument")


def test_sigv2_presigned_urls_are_capped_at_7_days(s3: S3Server, bucket: str) -> None:
    s3.client().put_object(Bucket=bucket, Key="k", Body=b"x")
    v2 = boto3.client("s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key,
                      aws_secret_access_key=s3.secret_key, region_name="us-east-1",
                      config=Config(signature_version="s3"))
    ok = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=3600)
    assert requests.get(ok, timeout=10).text == "x"
    far = v2.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=30 * 86400)
    r = requests.get(far, timeout=10)
    assert r.status_code == 400 and "<Code>AuthorizationQueryParametersError</Code>" in r.text


# -- 9. ListObjectVersions follows EncodingType --------------------------------------------------------
def test_list_object_versions_shows_keys_as_written(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    for k in ("asdf+b", "dir/a b&c"):
        c.put_object(Bucket=bucket, Key=k, Body=b"x")
    got = c.list_object_versions(Bucket=bucket)
    assert sorted(v["Key"] for v in got["Versions"]) == ["asdf+b", "dir/a b&c"]
    got = c.list_object_versions(Bucket=bucket, Delimiter="/", Prefix="")
    assert [p["Prefix"] for p in got["CommonPrefixes"]] == ["dir/"]
    plain = send(s3, "GET", f"/{bucket}?versions")  # no encoding-type: keys as they are
    assert "<Key>asdf+b</Key>" in plain.text and "<EncodingType>" not in plain.text
    enc = send(s3, "GET", f"/{bucket}?versions&encoding-type=url")
    assert "<Key>asdf%2Bb</Key>" in enc.text and "<EncodingType>url</EncodingType>" in enc.text


# -- 10. bucket names follow AWS's rules ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ok.-bad", "ok-.bad", "xn--bucket", "sthree-bucket", "bucket-s3alias",
                                  "bucket--ol-s3", "a..b"])
def test_bucket_names_follow_aws_rules(s3: S3Server, name: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.client().create_bucket(Bucket=name)
    assert e.value.response["Error"]["Code"] == "InvalidBucketName"


# -- 11. unimplemented sub-resources are NotImplemented, never another operation -------------------------
def test_unimplemented_bucket_subresources_are_not_create_bucket(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    calls = [
        lambda: c.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}),
        lambda: c.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={
            "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}),
        lambda: c.put_bucket_cors(Bucket=bucket, CORSConfiguration={
            "CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]}),
        lambda: c.put_bucket_website(Bucket=bucket, WebsiteConfiguration={"IndexDocument": {"Suffix": "i.html"}}),
        lambda: c.put_bucket_request_payment(Bucket=bucket, RequestPaymentConfiguration={"Payer": "Requester"}),
        lambda: c.put_bucket_accelerate_configuration(Bucket=bucket,
                                                      AccelerateConfiguration={"Status": "Enabled"}),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == "NotImplemented", e.value.response
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_unimplemented_object_subresources_do_not_overwrite(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    c.put_object(Bucket=bucket, Key="k", Body=b"precious")
    with pytest.raises(ClientError) as e:
        c.put_object_retention(Bucket=bucket, Key="k", Retention={"Mode": "GOVERNANCE",
                                                                  "RetainUntilDate": "2030-01-01T00:00:00Z"})
    assert e.value.response["Error"]["Code"] == "InvalidRequest"  # no Object Lock here (test_object_lock.py)
    with pytest.raises(ClientError) as e:
        c.put_object_legal_hold(Bucket=bucket, Key="k", LegalHold={"Status": "ON"})
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    assert send(s3, "PUT", f"/{bucket}/k?restore", b"<RestoreRequest/>").code == "NotImplemented"
    assert c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"precious"



def test_copy_source_that_is_not_utf8_is_refused(s3: S3Server, bucket: str) -> None:
    s3.client().put_object(Bucket=bucket, Key="\ufffd", Body=b"replacement character")
    r = send(s3, "PUT", f"/{bucket}/copy", headers={"x-amz-copy-source": f"/{bucket}/%ff"})
    assert (r.status, r.code) == (400, "InvalidURI")
    with pytest.raises(ClientError):
        s3.client().head_object(Bucket=bucket, Key="copy")
