# SPDX-License-Identifier: BSD-2-Clause
"""qdb's error codes as exceptions.

Every code of node/error.h is a class: the C name without QDB_E_ in
CamelCase (QDB_E_ALIAS_NOT_FOUND is AliasNotFound), also reachable under the
C name itself (qdb.QDB_E_ALIAS_NOT_FOUND is qdb.AliasNotFound).  Each is an
Error, whose message is libqdb's own text for the code (qdb_error()), and
which carries .code (the integer) and .name (the C name).  The codes are the
wire's and never renumbered.
"""
from ._native import lib

# code: C name, in node/error.h's order (tests/python checks they agree)
CODES = {
    1: "QDB_E_ALIAS_NOT_FOUND",
    2: "QDB_E_ALIAS_ALREADY_EXISTS",
    3: "QDB_E_TIMEOUT",
    4: "QDB_E_UNSTABLE",
    5: "QDB_E_WRONG_NODE",
    6: "QDB_E_CONNECTION_REFUSED",
    7: "QDB_E_CONNECTION_RESET",
    8: "QDB_E_PROTOCOL",
    9: "QDB_E_INVALID_ARGUMENT",
    10: "QDB_E_BUFFER_TOO_SMALL",
    11: "QDB_E_ALIAS_TOO_LONG",
    12: "QDB_E_UNMATCHED_CONTENT",
    13: "QDB_E_OUTCOME_UNKNOWN",
    14: "QDB_E_NO_SESSION",
    15: "QDB_E_STORAGE",
    16: "QDB_E_TRUNCATED",
    17: "QDB_E_OVERSIZED",
    18: "QDB_E_BAD_VERSION",
    19: "QDB_E_BAD_TYPE",
    20: "QDB_E_MALFORMED",
    21: "QDB_E_INTERNAL",
    22: "QDB_E_NOT_CONNECTED",
    23: "QDB_E_UNAVAILABLE",
    24: "QDB_E_REFUSED",
    25: "QDB_E_TOO_MANY",
    26: "QDB_E_AUTHENTICATION",
    27: "QDB_E_DISABLED",
    28: "QDB_E_ALIAS_EMPTY",
    29: "QDB_E_CONTENT_TOO_LARGE",
    30: "QDB_E_DISK_FULL",
    31: "QDB_E_DEPOT_FULL",
}


class Error(Exception):
    """A qdb error: .code, .name (the C name) and libqdb's message."""
    code = None
    name = "QDB_E_UNKNOWN"

    def __init__(self, message=None, code=None):
        if code is not None:
            self.code = code
        if message is None:
            message = lib.qdb_error(self.code if self.code is not None else -1).decode()
        super().__init__(message)


def _camel(name):
    return "".join(w.capitalize() for w in name[len("QDB_E_"):].split("_"))


BY_CODE = {}
for _code, _name in CODES.items():
    _cls = type(_camel(_name), (Error,), {"code": _code, "name": _name,
                                          "__doc__": "libqdb's " + _name + "."})
    BY_CODE[_code] = _cls
    globals()[_cls.__name__] = _cls
    globals()[_name] = _cls


def check(rc):
    """Raise the exception for a libqdb return code (nothing for QDB_OK)."""
    if rc != 0:
        raise BY_CODE.get(rc, Error)(code=rc)


__all__ = ["Error", "check"] + [c.__name__ for c in BY_CODE.values()] + list(CODES.values())
