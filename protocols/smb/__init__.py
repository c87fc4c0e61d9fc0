"""SMB front end: SMB 2.0.2 to 3.1.1 (MS-SMB2) served natively from core.fs.

Layers, bottom up. Everything below ``server`` is sans-IO (bytes in, bytes out, plain objects;
tests drive it without sockets and hypothesis fuzzes the codecs); impacket supplies wire
structures, NTLM message helpers and srvsvc's NDR, never the server:

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
- ``createctx`` (create contexts), ``ioctl`` (FSCTL codecs), ``lockreq`` (LOCK requests),
  ``notify`` (CHANGE_NOTIFY and a snapshot-diff watcher), ``oplockwire`` + ``leases`` (oplock and
  lease grants, breaks and acknowledgments), ``srvsvc`` (the DCE/RPC share-listing pipe).
- ``shares`` (the ``smb.shares`` config), ``paths`` (checking and walking a path inside a share),
  ``streams`` (alternate data streams as xattrs), ``errors`` (the one core.fs -> NTSTATUS mapper),
  ``snapshots`` (Previous Versions: core.fs's kept versions as @GMT snapshots, opened read-only).
- ``state`` (server, session, tree, open), ``conn`` (one connection as a state machine: signing,
  encryption, credits, compounds, async operations) and the command handlers: ``handlers_session``
  (NEGOTIATE, SESSION_SETUP, LOGOFF, TREE_CONNECT/DISCONNECT, ECHO), ``handlers_create``,
  ``handlers_file`` (CLOSE, FLUSH, READ, WRITE), ``handlers_dir`` (QUERY_DIRECTORY),
  ``handlers_info`` (QUERY_INFO, SET_INFO), ``handlers_lock``, ``handlers_ioctl``,
  ``handlers_notify``, ``handlers_oplock``, ``pipes`` (IPC$).
- ``server`` (asyncio sockets, the poller) and ``service`` (start/stop; what the gateway runs).
"""
