"""A repeated CompleteMultipartUpload (an SDK retrying a lost response) succeeds with the same ETag, as on
AWS, without joining the parts again; anything else about a completed upload is NoSuchUpload."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.protocols.s3.conftest import S3Server

MiB = 1024 * 1024


def code(e: pytest.ExceptionInfo[ClientError]) -> str:
    return str(e.value.response["Error"]["Code"])


def _upload(c: Any, bucket: str, key: str) -> tuple[str, list[dict[str, Any]], bytes]:
    up = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    data = [os.urandom(5 * MiB), os.urandom(1000)]
    parts = [{"PartNumber": n, "ETag": c.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n,
                                                     Body=d)["ETag"]} for n, d in enumerate(data, 1)]
    return up, parts, b"".join(data)


def test_repeated_complete_answers_as_the_first(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    up, parts, data = _upload(c, bucket, "obj")
    first = c.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})
    stamp = c.head_object(Bucket=bucket, Key="obj")["LastModified"]
    time.sleep(1.1)  # a second join would give the object a later Last-Modified
    again = c.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})
    assert again["ETag"] == first["ETag"] and again["Key"] == "obj" and first["ETag"].endswith('-2"')
    head = c.head_object(Bucket=bucket, Key="obj")
    assert head["LastModified"] == stamp and head["ETag"] == first["ETag"]
    assert c.get_object(Bucket=bucket, Key="obj")["Body"].read() == data
    for call in (lambda: c.list_parts(Bucket=bucket, Key="obj", UploadId=up),
                 lambda: c.upload_part(Bucket=bucket, Key="obj", UploadId=up, PartNumber=3, Body=b"x"),
                 lambda: c.abort_multipart_upload(Bucket=bucket, Key="obj", UploadId=up),
                 lambda: c.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up,
                                                     MultipartUpload={"Parts": parts[:1]})):
        with pytest.raises(ClientError) as e:  # the upload itself is gone
            call()
        assert code(e) == "NoSuchUpload"
    assert up not in [u["UploadId"] for u in c.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    with pytest.raises(ClientError) as e:  # another key's Complete cannot use the record
        c.complete_multipart_upload(Bucket=bucket, Key="other", UploadId=up, MultipartUpload={"Parts": parts})
    assert code(e) == "NoSuchUpload"
    c.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})


def test_repeat_after_the_object_changed_is_no_such_upload(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    up, parts, _ = _upload(c, bucket, "obj")
    c.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})
    c.put_object(Bucket=bucket, Key="obj", Body=b"newer")
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})
    assert code(e) == "NoSuchUpload"
    assert c.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"newer"


def test_concurrent_completes_join_once(s3: S3Server, bucket: str) -> None:
    c = s3.client()
    up, parts, data = _upload(c, bucket, "obj")
    clients = [s3.client() for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        etags = list(pool.map(lambda cl: cl.complete_multipart_upload(
            Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})["ETag"], clients))
    assert len(set(etags)) == 1
    assert c.get_object(Bucket=bucket, Key="obj")["Body"].read() == data


def test_record_goes_with_the_expiry_sweep(s3: S3Server, bucket: str) -> None:
    from core.store import open_store
    from protocols.s3.multipart import expire_uploads
    c = s3.client()
    up, parts, _ = _upload(c, bucket, "obj")
    c.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})
    with open_store(str(s3.data)) as st:
        expire_uploads(st.fs, 3600)  # young: kept
        c.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})
        expire_uploads(st.fs, 3600, now_ns=time.time_ns() + 7200 * 10**9)
    with pytest.raises(ClientError) as e:
        c.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})
    assert code(e) == "NoSuchUpload"


class LoseFirstComplete:
    """A TCP proxy in front of the server that loses the server's answer to the first
    CompleteMultipartUpload (the connection closes instead), as a network failure would."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.split("//")[1].split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.completes = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        server = socket.create_connection(self.upstream)
        lose = threading.Event()

        def forward() -> None:
            try:
                while data := client.recv(65536):
                    line = data.split(b"\r\n", 1)[0]
                    if line.startswith(b"POST ") and b"uploadId=" in line:
                        with self.lock:
                            self.completes += 1
                            if self.completes == 1:
                                lose.set()
                    server.sendall(data)
            except OSError:
                pass
        threading.Thread(target=forward, daemon=True).start()
        try:
            while data := server.recv(65536):
                if lose.is_set():
                    break  # the answer never reaches the client
                client.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (client, server):  # shutdown, not just close: the other thread is in recv on them
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def lossy(s3: S3Server) -> Iterator[LoseFirstComplete]:
    proxy = LoseFirstComplete(s3.endpoint)
    yield proxy
    proxy.close()


def test_sdk_retry_after_a_lost_response_succeeds(s3: S3Server, bucket: str, lossy: LoseFirstComplete) -> None:
    c = s3.client()
    up, parts, data = _upload(c, bucket, "obj")
    through = boto3.client("s3", endpoint_url=lossy.endpoint, aws_access_key_id=s3.access_key,
                           aws_secret_access_key=s3.secret_key, region_name="us-east-1",
                           config=Config(retries={"mode": "standard", "max_attempts": 3}))
    r = through.complete_multipart_upload(Bucket=bucket, Key="obj", UploadId=up, MultipartUpload={"Parts": parts})
    assert lossy.completes == 2  # the first answer was lost and the SDK sent the request again
    assert r["ETag"] == c.head_object(Bucket=bucket, Key="obj")["ETag"]
    assert r["ResponseMetadata"]["RetryAttempts"] == 1
    assert c.get_object(Bucket=bucket, Key="obj")["Body"].read() == data
