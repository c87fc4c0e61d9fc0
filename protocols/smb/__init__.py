"""SMB front end: SMB 2.0.2 to 3.1.1 (MS-SMB2) served natively from core.fs.

Layers, bottom up, all sans-IO (bytes in, bytes out; tests drive them with no socket and
hypothesis fuzzes them); impacket supplies wire structures and NTLM message helpers, never
the server:

- ``framing``: Direct TCP transport frames, SMB1/transform/compression recognition.
- ``header``: the 64-byte SMB2 header, compound requests and responses, related chains,
  the ERROR body; ``credits``: credit charge and the MessageId window; ``status``: NTSTATUS.
- ``crypto``: the SP800-108 KDF, preauth integrity (SHA-512), signing (HMAC-SHA256,
  AES-CMAC, AES-GMAC) and encryption (AES-128/256-CCM/GCM, the transform header).
- ``negotiate``: NEGOTIATE requests and contexts, the dialect/cipher/signing choice, the
  response, the SMB1 multi-protocol negotiate.
- ``spnego`` + ``auth``: NTLMv2 inside SPNEGO on the server side (MIC, mechListMIC, key
  exchange), against core.identity's NT hashes.
- ``security``: NT security descriptors <-> core.fs ACLs (SIDs from core.identity).
- ``fileinfo``, ``setinfo``, ``dirinfo``: QUERY_INFO / SET_INFO classes and QUERY_DIRECTORY
  entries from core.fs attributes, and MS-FSA wildcard matching.

Still to come (issue 11): session/tree/open state, the command handlers, the asyncio
``server`` (the only module with sockets), shares config, oplocks/leases, CHANGE_NOTIFY.
"""
