"""XML in and out: small builders for responses, a guarded parser for request bodies."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from protocols.s3.errors import S3Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_XML = 2 * 1024 * 1024


def iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns / 1e9)) + f".{(ns // 1_000_000) % 1000:03d}Z"


def http_date(ns: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(ns / 1e9))


def el(tag: str, value: object) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>"


def doc(root: str, inner: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{NS}">{inner}</{root}>'.encode()


def parse(body: bytes) -> ET.Element:
    """Parse a request body; entity declarations and oversized bodies are refused."""
    if len(body) > MAX_XML:
        raise S3Error("MalformedXML", "The XML you provided was too large", 400)
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise S3Error("MalformedXML", "DTDs are not allowed", 400)
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against "
                      "our published schema.", 400) from None
    for e in root.iter():  # drop namespaces: clients differ in sending them
        if "}" in e.tag:
            e.tag = e.tag.split("}", 1)[1]
    return root


def text(e: ET.Element | None, tag: str, default: str | None = None) -> str | None:
    if e is None:
        return default
    c = e.find(tag)
    return c.text if c is not None and c.text is not None else default
