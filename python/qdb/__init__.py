# SPDX-License-Identifier: BSD-2-Clause
"""qdb for Python 3: a client of a qdb hive over libqdb (ctypes).

    import qdb
    with qdb.Cluster("127.0.0.1:2836", timeout=60) as c:
        c.put("entry", {"any": ["picklable", "object"]})
        c.get("entry")                      # {'any': ['picklable', 'object']}
        c.blob("raw").put(b"\\x00bytes")     # raw bytes, no serialization

Values are serialized with pickle (Python's native serialization) unless the
Cluster is given another serializer (an object with dumps(obj) -> bytes and
loads(bytes) -> obj).  c.blob(alias) reads and writes raw bytes.

WARNING: unpickling runs code chosen by whoever wrote the bytes.  Read
pickled entries only from a hive whose every writer you trust; otherwise use
c.blob(alias) (raw bytes) or a data-only serializer such as
qdb.JsonSerializer.

Errors are exceptions named after libqdb's codes (qdb.AliasNotFound, also
qdb.QDB_E_ALIAS_NOT_FOUND), subclasses of qdb.Error, with libqdb's message.
A Cluster is one libqdb handle: calls on it are serialized by a lock.
"""
import ctypes
import datetime as _dt
import json
import pickle
import threading
import time

from . import _native, errors
from ._native import lib
from .errors import *  # noqa: F401,F403 -- the exception classes
from .errors import Error, check, InvalidArgument, NotConnected, UnmatchedContent

__all__ = ["Cluster", "Blob", "Metadata", "PickleSerializer", "JsonSerializer", "version",
           "MAX_ALIAS", "MAX_EXPIRY_TIME"] + errors.__all__

MAX_ALIAS = 1024                    # bytes of an alias, UTF-8 encoded
MAX_EXPIRY_TIME = 253402300799      # 9999-12-31 23:59:59 UTC
MAX_PREFIX_RESULTS = 1000000


def version():
    """libqdb's version, "qdb x.y.z"."""
    return lib.qdb_version().decode()


class PickleSerializer:
    """Python's native serialization: any picklable object.  Unsafe to load
    from untrusted writers (see the module's warning)."""

    def __init__(self, protocol=pickle.HIGHEST_PROTOCOL):
        self.protocol = protocol

    def dumps(self, obj):
        return pickle.dumps(obj, protocol=self.protocol)

    def loads(self, data):
        return pickle.loads(data)


class JsonSerializer:
    """JSON as UTF-8: data only (dicts, lists, strings, numbers), safe to load
    from anyone."""

    def dumps(self, obj):
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

    def loads(self, data):
        return json.loads(data.decode())


class Metadata:
    """What the hive knows about an entry, without its content."""
    __slots__ = ("size", "version", "created", "modified", "expiry")

    def __init__(self, m):
        utc = _dt.timezone.utc
        self.size = m.size
        self.version = m.version
        self.created = _dt.datetime.fromtimestamp(m.creation_time_us / 1e6, utc)
        self.modified = _dt.datetime.fromtimestamp(m.modification_time_us / 1e6, utc)
        self.expiry = (_dt.datetime.fromtimestamp(m.expiry_time, utc)
                       if m.expiry_time else None)

    def __repr__(self):
        return ("Metadata(size=%d, version=%d, created=%s, modified=%s, expiry=%s)"
                % (self.size, self.version, self.created.isoformat(),
                   self.modified.isoformat(), self.expiry and self.expiry.isoformat()))


def _alias(alias):
    """An alias as the NUL-terminated UTF-8 bytes libqdb takes."""
    if isinstance(alias, str):
        alias = alias.encode("utf-8")
    if not isinstance(alias, (bytes, bytearray)):
        raise TypeError("an alias is a str (or UTF-8 bytes), not %s" % type(alias).__name__)
    if b"\0" in alias:
        raise InvalidArgument()  # a C string cannot hold it
    return bytes(alias)


def _expiry(when):
    """None (never) | absolute UTC seconds | datetime | timedelta from now."""
    if when is None:
        return 0
    if isinstance(when, _dt.timedelta):
        when = time.time() + when.total_seconds()
    elif isinstance(when, _dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        when = when.timestamp()
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise TypeError("an expiry is None, seconds since the epoch, a datetime or a timedelta")
    t = int(-(-when // 1))  # rounded up: never earlier than asked
    if t < 0 or t > MAX_EXPIRY_TIME:
        raise InvalidArgument()
    return t


def _bytes(data):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("a blob holds bytes, not %s" % type(data).__name__)
    return bytes(data)


class Cluster:
    """A connection to a hive through one of its nodes ("HOST:PORT").

    timeout: seconds an operation may take (libqdb's operation timeout).
    serializer: how values become bytes (default: PickleSerializer()).
    key_file: the hive key file (qdbd --gen-key) when the hive has one;
    a node that refuses it (or its absence) raises qdb.Authentication.
    """

    def __init__(self, uri="127.0.0.1:2836", timeout=60, serializer=None, key_file=None):
        self._lock = threading.Lock()
        self._h = _native.c_handle()
        self.serializer = serializer if serializer is not None else PickleSerializer()
        check(lib.qdb_open(ctypes.byref(self._h), _native.PROTOCOL_TCP))
        try:
            ms = int(timeout * 1000)
            if ms <= 0:
                raise InvalidArgument()
            check(_native.set_option(self._h, _native.OPTION_OPERATION_TIMEOUT,
                                     ctypes.c_int(ms)))
            if key_file is not None:
                check(_native.set_option(self._h, _native.OPTION_HIVE_KEY_FILE,
                                         ctypes.c_char_p(str(key_file).encode())))
            check(lib.qdb_connect(self._h, uri.encode()))
        except BaseException:
            lib.qdb_close(self._h)
            self._h = None
            raise

    # ---- life cycle -----------------------------------------------------------

    def close(self):
        """Close the handle (again: nothing)."""
        with self._lock:
            if self._h is not None:
                lib.qdb_close(self._h)
                self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        if getattr(self, "_h", None) is not None:
            lib.qdb_close(self._h)
            self._h = None

    def _handle(self):
        if self._h is None:
            raise NotConnected()
        return self._h

    def _call(self, fn, *args):
        with self._lock:
            return fn(self._handle(), *args)

    def _take(self, p, n):
        """Copy a libqdb buffer out and release it."""
        try:
            return ctypes.string_at(p.value, n.value) if p.value else b""
        finally:
            if p.value:
                lib.qdb_free_buffer(self._h, p)

    # ---- raw bytes ---------------------------------------------------------------

    def _put(self, alias, data, expiry, update):
        e = _expiry(expiry)
        fn = lib.qdb_update_with_expiry if update else lib.qdb_put_with_expiry
        check(self._call(fn, _alias(alias), data, len(data), e))

    def _get(self, alias):
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        with self._lock:
            rc = lib.qdb_get_buffer(self._handle(), _alias(alias), ctypes.byref(p), ctypes.byref(n))
            check(rc)
            return self._take(p, n)

    def _get_update(self, alias, data):
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        with self._lock:
            check(lib.qdb_get_update(self._handle(), _alias(alias), data, len(data),
                                     ctypes.byref(p), ctypes.byref(n)))
            return self._take(p, n)

    def _get_remove(self, alias):
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        with self._lock:
            check(lib.qdb_get_remove(self._handle(), _alias(alias), ctypes.byref(p),
                                     ctypes.byref(n)))
            return self._take(p, n)

    def _cas(self, alias, new, comparand):
        """None when swapped; else raises UnmatchedContent with .current (bytes)."""
        p, n = ctypes.c_void_p(), ctypes.c_size_t()
        with self._lock:
            rc = lib.qdb_compare_and_swap(self._handle(), _alias(alias), new, len(new),
                                          comparand, len(comparand), ctypes.byref(p),
                                          ctypes.byref(n))
            current = self._take(p, n) if rc == UnmatchedContent.code else None
        if rc == UnmatchedContent.code:
            e = UnmatchedContent()
            e.current_bytes = current
            raise e
        check(rc)

    # ---- values (serialized) -------------------------------------------------------

    def put(self, alias, value, expiry=None):
        """Create an entry (AliasAlreadyExists if it exists).  expiry: None
        (never), UTC seconds since the epoch, a datetime, or a timedelta."""
        self._put(alias, self.serializer.dumps(value), expiry, update=False)

    def update(self, alias, value, expiry=None):
        """Create or replace an entry (and its expiry: None is never)."""
        self._put(alias, self.serializer.dumps(value), expiry, update=True)

    def get(self, alias):
        """The entry's value (AliasNotFound if there is none)."""
        return self.serializer.loads(self._get(alias))

    def get_update(self, alias, value):
        """Replace an existing entry; returns its previous value."""
        return self.serializer.loads(self._get_update(alias, self.serializer.dumps(value)))

    def cas(self, alias, value, comparand):
        """Replace with value if the stored bytes equal comparand's
        serialization.  Otherwise raises UnmatchedContent, whose .current is
        the value stored (compare by bytes: equal objects whose pickles
        differ, e.g. sets, do not match)."""
        try:
            self._cas(alias, self.serializer.dumps(value), self.serializer.dumps(comparand))
        except UnmatchedContent as e:
            e.current = self.serializer.loads(e.current_bytes)
            raise

    def remove(self, alias):
        """Delete an entry (AliasNotFound if there is none)."""
        check(self._call(lib.qdb_remove, _alias(alias)))

    def get_remove(self, alias):
        """Read and delete an entry in one step; returns its value."""
        return self.serializer.loads(self._get_remove(alias))

    def remove_if(self, alias, comparand):
        """Delete the entry only if it holds comparand (else UnmatchedContent)."""
        data = self.serializer.dumps(comparand)
        check(self._call(lib.qdb_remove_if, _alias(alias), data, len(data)))

    def remove_all(self):
        """Delete every entry of the hive."""
        check(self._call(lib.qdb_remove_all))

    # ---- expiry and metadata --------------------------------------------------------

    def expires_at(self, alias, when):
        """Set (None: clear) an entry's expiry: UTC seconds, datetime or timedelta."""
        check(self._call(lib.qdb_expires_at, _alias(alias), _expiry(when)))

    def expires_from_now(self, alias, seconds):
        """Expire seconds from now (this machine's clock)."""
        if isinstance(seconds, _dt.timedelta):
            seconds = seconds.total_seconds()
        check(self._call(lib.qdb_expires_from_now, _alias(alias), int(-(-seconds // 1))))

    def get_expiry(self, alias):
        """The expiry as an aware UTC datetime, or None (never)."""
        t = _native.c_time()
        check(self._call(lib.qdb_get_expiry, _alias(alias), ctypes.byref(t)))
        return _dt.datetime.fromtimestamp(t.value, _dt.timezone.utc) if t.value else None

    def metadata(self, alias):
        """Size, version, creation and modification times, expiry."""
        m = _native.Metadata()
        check(self._call(lib.qdb_get_metadata, _alias(alias), ctypes.byref(m)))
        return Metadata(m)

    # ---- prefixes -----------------------------------------------------------------

    def prefix_get(self, prefix, max_count=1000):
        """The aliases starting with prefix, over the whole hive, sorted by
        their UTF-8 bytes; TooMany when more than max_count match."""
        arr = ctypes.POINTER(ctypes.c_char_p)()
        n = ctypes.c_size_t()
        if not 0 <= max_count <= MAX_PREFIX_RESULTS:
            raise InvalidArgument()
        with self._lock:
            check(lib.qdb_prefix_get(self._handle(), _alias(prefix), max_count,
                                     ctypes.byref(arr), ctypes.byref(n)))
            try:
                return [arr[i].decode("utf-8", "surrogateescape") for i in range(n.value)]
            finally:
                lib.qdb_free_buffer(self._h, ctypes.cast(arr, ctypes.c_void_p))

    def prefix_count(self, prefix):
        """How many aliases start with prefix."""
        n = ctypes.c_uint64()
        check(self._call(lib.qdb_prefix_count, _alias(prefix), ctypes.byref(n)))
        return n.value

    # ---- raw bytes ------------------------------------------------------------------

    def blob(self, alias):
        """The entry as raw bytes, without serialization."""
        return Blob(self, alias)


class Blob:
    """One entry's raw bytes: the calls of Cluster, taking and giving bytes."""

    def __init__(self, cluster, alias):
        self.cluster = cluster
        self.alias = alias

    def put(self, data, expiry=None):
        self.cluster._put(self.alias, _bytes(data), expiry, update=False)

    def update(self, data, expiry=None):
        self.cluster._put(self.alias, _bytes(data), expiry, update=True)

    def get(self):
        return self.cluster._get(self.alias)

    def get_update(self, data):
        return self.cluster._get_update(self.alias, _bytes(data))

    def cas(self, data, comparand):
        """None when swapped; UnmatchedContent with .current (bytes) otherwise."""
        try:
            self.cluster._cas(self.alias, _bytes(data), _bytes(comparand))
        except UnmatchedContent as e:
            e.current = e.current_bytes
            raise

    def get_remove(self):
        return self.cluster._get_remove(self.alias)

    def remove(self):
        self.cluster.remove(self.alias)

    def remove_if(self, comparand):
        data = _bytes(comparand)
        check(self.cluster._call(lib.qdb_remove_if, _alias(self.alias), data, len(data)))

    def expires_at(self, when):
        self.cluster.expires_at(self.alias, when)

    def expires_from_now(self, seconds):
        self.cluster.expires_from_now(self.alias, seconds)

    def get_expiry(self):
        return self.cluster.get_expiry(self.alias)

    def metadata(self):
        return self.cluster.metadata(self.alias)
