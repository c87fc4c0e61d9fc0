"""XML in and out: small builders for responses, a hardened parser (defusedxml) for request bodies."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from protocols.s3.errors import S3Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_XML = 4 * 1024 * 1024  # the largest body cap (limits.BODY_CAPS); each operation has its own


def iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{(ns // 1_000_000) % 1000:03d}Z"


def http_date(ns: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(ns / 1e9))


def el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def doc(root: str, inner: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}">{inner}</{root}>'.encode()


def parse(body: bytes) -> ET.Element:
    """Parse a request body with a hardened parser: DTDs, entities and external references are refused in
    every encoding (the parser sees the decoded document, not raw bytes), as are oversized bodies.

    >>> parse(b'<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet/></Tagging>').tag
    'Tagging'
    >>> parse('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE d [<!ENTITY e "k">]><d>&e;</d>'.encode("utf-16"))
    Traceback (most recent call last):
    protocols.s3.errors.S3Error: DTDs and entities are not allowed
    """
    if len(body) > MAX_XML:
        raise S3Error("MaxMessageLengthExceeded", "Your request was too big.", 400)
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise S3Error("MalformedXML", "DTDs and entities are not allowed", 400) from None
    except (ET.ParseError, ValueError, LookupError):  # LookupError: an unknown encoding declared
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against "
                      "our published schema.", 400) from None
    for e in root.iter():  # drop namespaces: clients differ in sending them
        if isinstance(e.tag, str) and "}" in e.tag:
            e.tag = e.tag.split("}", 1)[1]
    return root


def text(e: ET.Element | None, tag: str, default: str | None = None) -> str | None:
    if e is None:
        return default
    c = e.find(tag)
    return c.text if c is not None and c.text is not None else default
