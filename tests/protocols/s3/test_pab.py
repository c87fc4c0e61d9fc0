"""Public Access Block configuration as boto3 sends and reads it."""

from __future__ import annotations

import itertools

import pytest

from protocols.s3.errors import S3Error
from protocols.s3.pab import PublicAccessBlock, parse_pab, render_pab
from tests.protocols.s3.test_acl import Capture

NAMES = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


@pytest.mark.parametrize("flags", list(itertools.product([False, True], repeat=4)))
def test_boto3_round_trip(flags: tuple[bool, bool, bool, bool]) -> None:
    cap = Capture()
    cap.client.put_public_access_block(Bucket="b", PublicAccessBlockConfiguration=dict(zip(NAMES, flags,
                                                                                            strict=True)))
    pab = parse_pab(cap.body())
    assert pab == PublicAccessBlock(*flags)
    cap.reply = render_pab(pab)
    got = cap.client.get_public_access_block(Bucket="b")["PublicAccessBlockConfiguration"]
    assert got == dict(zip(NAMES, flags, strict=True))
    assert PublicAccessBlock.from_json(pab.to_json()) == pab


def test_missing_settings_are_false() -> None:
    assert parse_pab(b"<PublicAccessBlockConfiguration/>") == PublicAccessBlock()
    body = (b'<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<RestrictPublicBuckets> true </RestrictPublicBuckets></PublicAccessBlockConfiguration>")
    assert parse_pab(body) == PublicAccessBlock(restrict_public_buckets=True)
    assert PublicAccessBlock.from_json("{}") == PublicAccessBlock()


@pytest.mark.parametrize("body", [
    b"<PublicAccessBlock/>",
    b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>",
    b"<PublicAccessBlockConfiguration><BlockPublicAcls/></PublicAccessBlockConfiguration>",
    b"<PublicAccessBlockConfiguration><BlockEverything>true</BlockEverything></PublicAccessBlockConfiguration>",
    b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls>"
    b"<BlockPublicAcls>false</BlockPublicAcls></PublicAccessBlockConfiguration>",
    b"<PublicAccessBlockConfiguration>",
    b"",
])
def test_malformed(body: bytes) -> None:
    with pytest.raises(S3Error) as e:
        parse_pab(body)
    assert (e.value.code, e.value.status) == ("MalformedXML", 400)
