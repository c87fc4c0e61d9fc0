"""The S3 view of core.fs: buckets under a root directory, keys as paths.

Synchronous helpers (handlers run them in worker threads).  Directories on a
key's path are created implicitly and removed again by S3 deletes once empty,
unless they were created as objects themselves ('key/').
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.errors import CoreError, Exists, NoAttribute, NotADirectory, NotEmpty, NotFound
from core.fs.fs import FileSystem
from core.fs.types import Attr
from core.meta.types import User
from protocols.s3 import keys
from protocols.s3.errors import S3Error, from_core, no_such_bucket, no_such_key
from protocols.s3.objmeta import MARKER

PUBLIC = "tessera.s3.public"


@dataclass
class S3Fs:
    fs: FileSystem
    root_path: str = "/"
    _root: int = 0
    _users: dict[str, tuple[float, User | None]] = field(default_factory=dict)

    @property
    def root(self) -> int:
        if not self._root:
            self._root = self.fs.makedirs(self.root_path).ino if self.root_path != "/" else self.fs.root
        return self._root

    # -- identity -------------------------------------------------------------------
    def user(self, access_key: str) -> User | None:
        hit = self._users.get(access_key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < 5.0:
            return hit[1]
        with self.fs.meta.read() as t:
            u = t.user_by_key(access_key)
        self._users[access_key] = (now, u)
        return u

    # -- buckets --------------------------------------------------------------------
    def buckets(self) -> list[tuple[str, Attr]]:
        out = []
        for e in self.fs.listdir(self.root):
            if e.type == 2 and keys.valid_bucket(e.name):
                out.append((e.name, self.fs.getattr(e.ino)))
        return out

    def bucket(self, name: str) -> Attr:
        if not keys.valid_bucket(name):
            raise no_such_bucket(name)
        try:
            a = self.fs.lookup(self.root, name)
        except CoreError:
            raise no_such_bucket(name) from None
        if not a.is_dir:
            raise no_such_bucket(name)
        return a

    def create_bucket(self, name: str, user: User | None, public: bool) -> None:
        keys.check_bucket(name)
        try:
            a = self.fs.mkdir(self.root, name, 0o755, *(_ids(user)))
        except Exists:
            raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                          "succeeded and you already own it.", 409, extra={"BucketName": name}) from None
        if public:
            self.fs.setxattr(a.ino, PUBLIC, b"read")

    def is_public(self, bucket: str) -> bool:
        try:
            return self.fs.getxattr(self.bucket(bucket).ino, PUBLIC) == b"read"
        except (CoreError, S3Error):
            return False

    def set_public(self, bucket: str, public: bool) -> None:
        ino = self.bucket(bucket).ino
        if public:
            self.fs.setxattr(ino, PUBLIC, b"read")
        else:
            try:
                self.fs.removexattr(ino, PUBLIC)
            except NoAttribute:
                pass

    def delete_bucket(self, name: str) -> None:
        self.bucket(name)
        try:
            self.fs.rmdir(self.root, name)
        except NotEmpty:
            raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409,
                          extra={"BucketName": name}) from None

    # -- keys -----------------------------------------------------------------------
    def lookup(self, bucket: str, key: str) -> Attr:
        """The file (or 'dir/' directory) behind a key; NoSuchKey otherwise."""
        b = self.bucket(bucket)
        parts, is_dir = keys.key_parts(key)
        try:
            a = self.fs.getattr(b.ino)
            for p in parts:
                if not a.is_dir:
                    raise no_such_key(key)
                a = self.fs.lookup(a.ino, p)
        except CoreError:
            raise no_such_key(key) from None
        if a.is_dir != is_dir or not (a.is_dir or a.is_file):
            raise no_such_key(key)
        return a

    def parent_for(self, bucket: str, key: str, user: User | None) -> tuple[int, str, bool]:
        """(parent inode, name, is a 'dir/' key) for writing ``key``; makes directories."""
        b = self.bucket(bucket)
        parts, is_dir = keys.key_parts(key)
        ino = b.ino
        uid, gid = _ids(user)
        for i, p in enumerate(parts[:-1]):
            try:
                try:
                    a = self.fs.lookup(ino, p)  # usually there: a read, not a write transaction
                except NotFound:
                    try:
                        a = self.fs.mkdir(ino, p, 0o755, uid, gid)
                    except Exists:  # made by someone else meanwhile
                        a = self.fs.lookup(ino, p)
            except CoreError as e:
                raise from_core(e, key) from None
            if not a.is_dir:
                raise S3Error("InvalidArgument", f"Cannot store key {key!r}: "
                              f"{'/'.join(parts[: i + 1])!r} is an object, not a prefix", 400)
            ino = a.ino
        return ino, parts[-1], is_dir

    def make_dir_marker(self, bucket: str, key: str, user: User | None) -> Attr:
        parent, name, _ = self.parent_for(bucket, key, user)
        try:
            a = self.fs.mkdir(parent, name, 0o755, *_ids(user))
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
                self.fs.unlink(chain[-1], parts[-1])
            else:
                return
        except (NotFound, NotADirectory, NotEmpty):
            return
        except CoreError as e:
            raise from_core(e, key) from None
        for i in range(len(parts) - 1, 0, -1):  # remove empty implicit parents up to the bucket
            d = self.fs.lookup(chain[i - 1], parts[i - 1])
            if self.fs.readdir(d.ino, limit=1):
                break
            try:
                self.fs.getxattr(d.ino, MARKER)
                break  # created as an object: it stays
            except NoAttribute:
                pass
            try:
                self.fs.rmdir(chain[i - 1], parts[i - 1])
            except CoreError:
                break


def _ids(user: User | None) -> tuple[int, int]:
    return (user.uid, user.gid) if user is not None else (0, 0)
