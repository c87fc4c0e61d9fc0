"""NFS front end: NFSv3 (RFC 1813), MOUNT v3 and NLM v4 served natively from core.fs.

Layers, bottom up: ``xdr`` (the XDR codec, RFC 4506), ``rpc`` (ONC-RPC messages, record
marking, AUTH_SYS; RFC 5531), the per-program codecs and handlers, and ``server``
(the only module that touches sockets).  Everything below ``server`` is sans-IO:
bytes in, bytes out, so tests drive it with no socket and hypothesis fuzzes it.
"""
