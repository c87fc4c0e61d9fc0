"""The S3 view of core.fs: buckets under a root directory, keys as paths.

Synchronous helpers (handlers run them in worker threads).  Directories on a
key's path are created implicitly and removed again by S3 deletes once empty,
unless they were created as objects themselves ('key/').
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import CoreError, Exists, NoAttribute, NotADirectory, NotEmpty, NotFound, Stale
from core.fs import Acl, Attr, Cred, FileSystem, FileType, Volume, acl
from core.identity import KeyMatch
from protocols.s3 import keys
from protocols.s3.errors import S3Error, from_core, no_such_bucket, no_such_key
from protocols.s3.objmeta import MARKER


@dataclass
class S3Service:
    """The S3 front end's hold on the store, one per process: a credential-bound view per request."""

    volume: Volume
    root_path: str = "/"
    bucket_mode: int = 0o700  # s3.bucket_mode: a new bucket's directory, owned by its creator
    object_mode: int = 0o600  # s3.object_mode: a new object's file, owned by its writer
    _root: int = 0

    @property
    def root(self) -> int:
        if not self._root:
            fs = self.volume.fs
            self._root = fs.makedirs(self.root_path).ino if self.root_path != "/" else fs.root
        return self._root

    def user(self, access_key: str) -> KeyMatch | None:
        """The active key's user (cached by the identity service; revocation bound: its refresh_s)."""
        return self.volume.identity.lookup_key(access_key)

    def view(self, cred: Cred) -> S3Fs:
        admin = self.volume.fs
        return S3Fs(admin.as_user(cred), admin, self.root, self)


@dataclass
class S3Fs:
    """One request's view: ``fs`` runs as the caller, ``admin`` only for S3's own bookkeeping
    (bucket creation, policy and access-block records, implicit directories, multipart parts)."""

    fs: FileSystem
    admin: FileSystem
    root: int
    service: S3Service
    known: dict[str, Attr] = field(default_factory=dict)  # buckets this request already looked up

    @property
    def cred(self) -> Cred:
        return self.fs.cred

    def owner_name(self, uid: int) -> str:
        u = self.service.volume.identity.user_by_uid(uid)
        return u.name if u is not None else str(uid)

    def uid_of(self, name: str) -> int | None:
        u = self.service.volume.identity.user(name)
        return u.uid if u is not None else None

    # -- buckets --------------------------------------------------------------------
    def buckets(self) -> list[tuple[str, Attr]]:
        """Buckets the caller may see: its own, and those whose directory it may list."""
        out = []
        c = self.cred
        for e in self.admin.listdir(self.root):
            if e.type != FileType.DIR or not keys.valid_bucket(e.name):
                continue
            a = self.admin.getattr(e.ino)
            if c.admin or a.uid == c.uid or self.fs.access(e.ino, acl.LIST_DIRECTORY) or self._policy_lists(e.name):
                out.append((e.name, a))
        return out

    def _policy_lists(self, name: str) -> bool:
        """Does the bucket's policy let the caller list (some of) it? Then ListBuckets shows it."""
        from protocols.s3 import authz, policy

        a = self.admin.lookup(self.root, name)
        info = authz.load_bucket(self.admin, name, a)
        if info.policy is None:
            return False
        c = self.cred
        who = None if c.anonymous else c.name
        user = self.service.volume.identity.user(c.name) if who else None
        groups = frozenset(user.groups) if user is not None else frozenset()
        return any(s.effect is policy.Effect.ALLOW and s.principal.matches(who, groups) != s.not_principal
                   and s.action_matches("s3:listbucket") for s in info.policy.statements)

    def bucket(self, name: str) -> Attr:
        if name in self.known:
            return self.known[name]
        if not keys.valid_bucket(name):
            raise no_such_bucket(name)
        try:
            a = self.admin.lookup(self.root, name)
        except CoreError:
            raise no_such_bucket(name) from None
        if not a.is_dir:
            raise no_such_bucket(name)
        return a

    def create_bucket(self, name: str, acl_: Acl | None) -> Attr:
        """Make the bucket's directory, owned by the caller with the configured mode."""
        keys.check_bucket(name)
        c = self.cred
        try:
            a = self.admin.mkdir(self.root, name, self.service.bucket_mode, c.uid, c.gid)
        except Exists:
            existing = self.admin.lookup(self.root, name)
            if existing.uid == c.uid:
                raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                              "succeeded and you already own it.", 409, extra={"BucketName": name}) from None
            raise S3Error("BucketAlreadyExists", "The requested bucket name is not available. The bucket namespace "
                          "is shared by all users of the system. Please select a different name and try again.",
                          409, extra={"BucketName": name}) from None
        if acl_ is not None:
            self.admin.setacl(a.ino, acl_)
        return a

    def delete_bucket(self, name: str) -> None:
        self.bucket(name)
        try:
            self.admin.rmdir(self.root, name)  # authz: only the owner, a policy or the admin get here
        except NotEmpty:
            raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409,
                          extra={"BucketName": name}) from None

    # -- keys -----------------------------------------------------------------------
    def lookup(self, bucket: str, key: str) -> Attr:
        """The file (or 'dir/' directory) behind a key; NoSuchKey otherwise."""
        b = self.bucket(bucket)
        parts, is_dir = keys.key_parts(key)
        try:
            a = b
            for p in parts:
                if not a.is_dir:
                    raise no_such_key(key)
                a = self.fs.lookup(a.ino, p)
        except (NotFound, NotADirectory, Stale):
            raise no_such_key(key) from None
        if a.is_dir != is_dir or not (a.is_dir or a.is_file):
            raise no_such_key(key)
        return a

    def parent_for(self, bucket: str, key: str) -> tuple[int, str, bool]:
        """(parent inode, name, is a 'dir/' key) for writing ``key``; makes directories.

        Implicit directories belong to the bucket's owner (mode 0755, inheriting the bucket's ACL),
        made only for a caller who may add entries to the bucket.
        """
        b = self.bucket(bucket)
        parts, is_dir = keys.key_parts(key)
        ino = b.ino
        want = acl.ADD_SUBDIRECTORY | acl.EXECUTE
        for i, p in enumerate(parts[:-1]):
            try:
                try:
                    a = self.fs.lookup(ino, p)  # usually there: a read, not a write transaction
                except NotFound:
                    if not self.cred.admin and self.fs.access(ino, want) != want:
                        raise S3Error("AccessDenied", "Access Denied", 403) from None
                    try:
                        a = self.admin.mkdir(ino, p, 0o755, b.uid, b.gid)
                    except Exists:  # made by someone else meanwhile
                        a = self.fs.lookup(ino, p)
            except CoreError as e:
                raise from_core(e, key) from None
            if not a.is_dir:
                raise S3Error("InvalidArgument", f"Cannot store key {key!r}: "
                              f"{'/'.join(parts[: i + 1])!r} is an object, not a prefix", 400)
            ino = a.ino
        return ino, parts[-1], is_dir

    def make_dir_marker(self, bucket: str, key: str) -> Attr:
        parent, name, _ = self.parent_for(bucket, key)
        try:
            a = self.fs.mkdir(parent, name, 0o755)
        except Exists:
            a = self.fs.lookup(parent, name)
            if not a.is_dir:
                raise S3Error("InvalidArgument", f"Cannot create {key!r}: an object has that name", 400) from None
        self.fs.setxattr(a.ino, MARKER, b"1")
        return a

    def delete(self, bucket: str, key: str) -> None:
        """Delete a key (idempotent, like S3) and prune now-empty implicit directories."""
        b = self.bucket(bucket)
        try:
            parts, is_dir = keys.key_parts(key)
        except S3Error:
            return  # such a key cannot exist
        chain = [b.ino]
        try:
            for p in parts[:-1]:
                chain.append(self.fs.lookup(chain[-1], p).ino)
            last = self.fs.lookup(chain[-1], parts[-1])
            if is_dir and last.is_dir:
                try:
                    self.fs.removexattr(last.ino, MARKER)
                except NoAttribute:
                    pass
                self.fs.rmdir(chain[-1], parts[-1])
            elif not is_dir and last.is_file:
                self.fs.unlink(chain[-1], parts[-1], keep_locked=True)  # versioning keeps a locked one
            else:
                return
        except (NotFound, NotADirectory, NotEmpty):
            return
        except CoreError as e:
            raise from_core(e, key) from None
        self.prune(chain, parts)

    def prune(self, chain: list[int], parts: list[str]) -> None:
        """Remove the now-empty implicit directories of a key (``chain``: the bucket and its directories)."""
        for i in range(len(parts) - 1, 0, -1):  # remove empty implicit parents up to the bucket
            try:  # (a concurrent delete may be pruning the same parents: whatever it removed is done)
                d = self.admin.lookup(chain[i - 1], parts[i - 1])
                if self.admin.readdir(d.ino, limit=1):
                    break
                try:
                    self.admin.getxattr(d.ino, MARKER)
                    break  # created as an object: it stays
                except NoAttribute:
                    pass
                self.admin.rmdir(chain[i - 1], parts[i - 1])  # housekeeping: the empty implicit parent
            except CoreError:
                break
