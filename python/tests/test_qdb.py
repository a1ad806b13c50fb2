# SPDX-License-Identifier: BSD-2-Clause
"""The qdb package against a real hive: $QDB_URI names one of its nodes
(tests/python.sh starts three qdbd on loopback and runs this)."""
import dataclasses
import datetime
import os
import re
import time

import pytest

import qdb

URI = os.environ.get("QDB_URI", "127.0.0.1:2836")


@dataclasses.dataclass
class Point:
    x: int
    y: float
    tags: list


@pytest.fixture
def c():
    with qdb.Cluster(URI, timeout=20) as cluster:
        yield cluster


def fresh(name):
    """An alias no other test (or earlier run) uses."""
    return "%s/%d/%d" % (name, os.getpid(), time.monotonic_ns())


@pytest.mark.parametrize("value", [
    {"a": 1, "b": [1, 2, 3], "nested": {"x": None, "y": (1, 2)}},
    [1, "two", 3.0, None, True, b"bytes"],
    Point(1, 2.5, ["a", "b"]),
    "unicode: \u00e9\u00e8 \u4e2d\u6587 \U0001f600",
    b"\x00" * 7 + bytes(range(256)),
    12345678901234567890,
    {1, 2, 3},
])
def test_round_trip(c, value):
    alias = fresh("rt")
    c.put(alias, value)
    assert c.get(alias) == value
    c.update(alias, [value, value])
    assert c.get(alias) == [value, value]


def test_one_mib_of_bytes(c):
    alias = fresh("big")
    data = os.urandom(1 << 20)
    c.put(alias, data)
    assert c.get(alias) == data
    c.blob(alias + "/raw").put(data)
    assert c.blob(alias + "/raw").get() == data
    assert c.metadata(alias + "/raw").size == 1 << 20


@pytest.mark.parametrize("alias", ["caf\u00e9", "\u65e5\u672c\u8a9e/\u30ad\u30fc",
                                   "emoji \U0001f680 alias", "\u00e9" * 480],
                         ids=["latin", "cjk", "emoji", "long"])
def test_unicode_aliases(c, alias):
    alias = alias + fresh("")
    c.update(alias, {"alias": alias})
    assert c.get(alias) == {"alias": alias}
    assert alias in c.prefix_get(alias[:4], 100000)
    c.remove(alias)


def test_errors_are_exceptions_with_libqdb_names_and_messages(c):
    alias = fresh("err")
    with pytest.raises(qdb.AliasNotFound) as e:
        c.get(alias)
    assert str(e.value) == "alias not found"
    assert e.value.code == 1 and e.value.name == "QDB_E_ALIAS_NOT_FOUND"
    assert qdb.QDB_E_ALIAS_NOT_FOUND is qdb.AliasNotFound
    assert isinstance(e.value, qdb.Error)
    c.put(alias, 1)
    with pytest.raises(qdb.AliasAlreadyExists):
        c.put(alias, 2)
    with pytest.raises(qdb.AliasTooLong):
        c.get("")
    with pytest.raises(qdb.AliasTooLong):
        c.get("x" * 1025)
    with pytest.raises(qdb.AliasTooLong):
        c.get("\u00e9" * 513)  # 1026 bytes in UTF-8
    with pytest.raises(qdb.InvalidArgument):
        c.put(fresh("e"), 1, expiry=-1)
    with pytest.raises(qdb.InvalidArgument):
        c.expires_at(alias, qdb.MAX_EXPIRY_TIME + 1)
    with pytest.raises(qdb.InvalidArgument):
        c.get("nul\0byte")
    with pytest.raises(TypeError):
        c.get(42)
    with pytest.raises(qdb.ConnectionRefused) as e:
        qdb.Cluster("127.0.0.1:1", timeout=5)
    assert "refused" in str(e.value)


def test_key_file(tmp_path):
    """key_file reaches libqdb: a file that is not a key is refused at once,
    and a key meets this keyless hive's refusal (authentication, not a
    vague connection error)."""
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    bad.chmod(0o600)
    with pytest.raises(qdb.InvalidArgument):
        qdb.Cluster(URI, timeout=5, key_file=bad)
    key = tmp_path / "hive.key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o600)
    with pytest.raises(qdb.Authentication) as e:
        qdb.Cluster(URI, timeout=5, key_file=key)
    assert "authentication failed" in str(e.value)


def test_error_table_matches_the_c_header():
    """Every code of node/error.h, same number, same name; the message is
    libqdb's."""
    header = os.environ.get("QDB_ERROR_H")
    if not header:
        pytest.skip("QDB_ERROR_H not set")
    with open(header) as f:
        found = dict((int(n), name) for name, n in
                     re.findall(r"^\s*(QDB_E_[A-Z_]+[A-Z])\s*=\s*(\d+),", f.read(), re.M))
    assert found == qdb.errors.CODES
    for code, name in found.items():
        assert getattr(qdb, name).code == code
        assert str(getattr(qdb, name)()) == qdb.lib.qdb_error(code).decode()


def test_get_update_cas_get_remove_remove_if(c):
    alias = fresh("ops")
    c.put(alias, {"v": 1})
    assert c.get_update(alias, {"v": 2}) == {"v": 1}
    c.cas(alias, {"v": 3}, {"v": 2})
    with pytest.raises(qdb.UnmatchedContent) as e:
        c.cas(alias, {"v": 4}, {"v": 2})
    assert e.value.current == {"v": 3}
    with pytest.raises(qdb.UnmatchedContent):
        c.remove_if(alias, {"v": 2})
    c.remove_if(alias, {"v": 3})
    with pytest.raises(qdb.AliasNotFound):
        c.get(alias)
    c.put(alias, ["taken"])
    assert c.get_remove(alias) == ["taken"]
    with pytest.raises(qdb.AliasNotFound):
        c.get_remove(alias)


def test_blob_is_raw_bytes(c):
    b = c.blob(fresh("blob"))
    b.put(b"\x80\x04not a pickle")
    assert b.get() == b"\x80\x04not a pickle"
    assert b.get_update(b"two") == b"\x80\x04not a pickle"
    with pytest.raises(qdb.UnmatchedContent) as e:
        b.cas(b"three", b"nope")
    assert e.value.current == b"two"
    b.cas(b"three", b"two")
    b.remove_if(b"three")
    with pytest.raises(qdb.AliasNotFound):
        b.get()
    with pytest.raises(TypeError):
        b.put("a str is not bytes")


def test_another_serializer(c):
    j = qdb.Cluster(URI, timeout=20, serializer=qdb.JsonSerializer())
    with j:
        alias = fresh("json")
        j.put(alias, {"b": [1, 2], "a": "x"})
        assert c.blob(alias).get() == b'{"a":"x","b":[1,2]}'
        assert j.get(alias) == {"a": "x", "b": [1, 2]}


def test_expiry(c):
    alias = fresh("exp")
    now = int(time.time())
    c.put(alias, "soon", expiry=now + 3600)
    assert c.get_expiry(alias) == datetime.datetime.fromtimestamp(now + 3600,
                                                                  datetime.timezone.utc)
    c.expires_at(alias, None)
    assert c.get_expiry(alias) is None
    c.expires_from_now(alias, datetime.timedelta(minutes=5))
    assert now + 299 <= c.get_expiry(alias).timestamp() <= now + 302
    c.update(alias, "past", expiry=datetime.datetime(2000, 1, 1))
    with pytest.raises(qdb.AliasNotFound):
        c.get(alias)
    c.put(alias, "back")  # expired: a put creates it again
    assert c.get(alias) == "back"
    c.update(alias, "in a second", expiry=datetime.timedelta(seconds=1))
    assert c.get(alias) == "in a second"
    time.sleep(2.1)
    with pytest.raises(qdb.AliasNotFound):
        c.get(alias)


def test_metadata(c):
    alias = fresh("meta")
    before = datetime.datetime.now(datetime.timezone.utc)
    c.blob(alias).put(b"12345")
    m = c.metadata(alias)
    assert m.size == 5 and m.version > 0 and m.expiry is None
    assert abs((m.created - before).total_seconds()) < 5
    assert m.modified == m.created
    c.blob(alias).update(b"1234567", expiry=datetime.timedelta(hours=1))
    m2 = c.metadata(alias)
    assert m2.size == 7 and m2.version > m.version and m2.created == m.created
    assert m2.expiry is not None and "Metadata(size=7" in repr(m2)


def test_prefix_get_across_the_hive(c):
    base = fresh("pfx") + "/"
    names = sorted(base + "%03d" % i for i in range(300))
    for n in reversed(names):
        c.blob(n).put(b"x")
    c.blob(fresh("pfy")).put(b"not matching")
    assert c.prefix_get(base, 300) == names
    assert c.prefix_count(base) == 300
    assert c.prefix_get(base + "01", 300) == names[10:20]
    with pytest.raises(qdb.TooMany):
        c.prefix_get(base, 299)
    assert c.prefix_get(base + "none", 10) == []
    with pytest.raises(qdb.InvalidArgument):
        c.prefix_get(base, 10 ** 7)


def test_context_manager_closes():
    with qdb.Cluster(URI) as cl:
        cl.blob(fresh("cm")).put(b"x")
    with pytest.raises(qdb.NotConnected):
        cl.get("anything")
    cl.close()  # again: nothing


def test_version():
    assert qdb.version().startswith("qdb ")
