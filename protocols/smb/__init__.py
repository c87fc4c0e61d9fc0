"""SMB front end: SMB 2.0.2 to 3.1.1 (MS-SMB2) served natively from core.fs.

Layers, bottom up: ``framing`` (Direct TCP transport frames), ``header`` (the 64-byte SMB2
header, compound requests and responses, the ERROR body, credit arithmetic), ``status``
(the NTSTATUS values the server answers with), then signing, session and tree state and the
command handlers, and ``server`` (the only module that touches sockets).  Everything below
``server`` is sans-IO: bytes in, bytes out, so tests drive it with no socket and hypothesis
fuzzes it.  impacket supplies wire structures, NTLM and SPNEGO helpers, never the server.
"""
