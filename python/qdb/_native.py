# SPDX-License-Identifier: BSD-2-Clause
"""libqdb through ctypes: loading the library and the prototypes of the calls.

The library is, in order: the file named by $QDB_LIBRARY; the one make
install wrote (qdb/_paths.py); libqdb.so.0 wherever the dynamic linker finds
it.  Nothing else is imported than the standard library.
"""
import ctypes
import ctypes.util
import os

c_handle = ctypes.c_void_p
c_error = ctypes.c_int
c_time = ctypes.c_int64
c_size_p = ctypes.POINTER(ctypes.c_size_t)
c_buffer_p = ctypes.POINTER(ctypes.c_void_p)


class Metadata(ctypes.Structure):
    """qdb_metadata_t (client/qdb.h)."""
    _fields_ = [
        ("size", ctypes.c_uint64),
        ("creation_time_us", ctypes.c_int64),
        ("modification_time_us", ctypes.c_int64),
        ("expiry_time", c_time),
        ("version", ctypes.c_uint64),
    ]


def _candidates():
    env = os.environ.get("QDB_LIBRARY")
    if env:
        yield env
        return  # asked for one: no other
    try:
        from . import _paths
        if os.path.exists(_paths.LIBQDB):
            yield _paths.LIBQDB
    except ImportError:  # running from the source tree: not generated
        pass
    found = ctypes.util.find_library("qdb")
    if found:
        yield found
    yield "libqdb.so.0"


def _load():
    errors = []
    for name in _candidates():
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            errors.append(str(e))
    raise ImportError("libqdb not found (set QDB_LIBRARY): " + "; ".join(errors))


lib = _load()

# name: (result, argument types); every call returns a qdb_error_t unless said
_PROTOTYPES = {
    "qdb_open": (c_error, [ctypes.POINTER(c_handle), ctypes.c_int]),
    "qdb_connect": (c_error, [c_handle, ctypes.c_char_p]),
    "qdb_close": (c_error, [c_handle]),
    "qdb_put": (c_error, [c_handle, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
    "qdb_update": (c_error, [c_handle, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
    "qdb_put_with_expiry": (c_error, [c_handle, ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_size_t, c_time]),
    "qdb_update_with_expiry": (c_error, [c_handle, ctypes.c_char_p, ctypes.c_char_p,
                                         ctypes.c_size_t, c_time]),
    "qdb_get_buffer": (c_error, [c_handle, ctypes.c_char_p, c_buffer_p, c_size_p]),
    "qdb_free_buffer": (None, [c_handle, ctypes.c_void_p]),
    "qdb_get_update": (c_error, [c_handle, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                 c_buffer_p, c_size_p]),
    "qdb_compare_and_swap": (c_error, [c_handle, ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
                                       c_buffer_p, c_size_p]),
    "qdb_remove": (c_error, [c_handle, ctypes.c_char_p]),
    "qdb_remove_all": (c_error, [c_handle]),
    "qdb_get_remove": (c_error, [c_handle, ctypes.c_char_p, c_buffer_p, c_size_p]),
    "qdb_remove_if": (c_error, [c_handle, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
    "qdb_get_metadata": (c_error, [c_handle, ctypes.c_char_p, ctypes.POINTER(Metadata)]),
    "qdb_expires_at": (c_error, [c_handle, ctypes.c_char_p, c_time]),
    "qdb_expires_from_now": (c_error, [c_handle, ctypes.c_char_p, c_time]),
    "qdb_get_expiry": (c_error, [c_handle, ctypes.c_char_p, ctypes.POINTER(c_time)]),
    "qdb_prefix_get": (c_error, [c_handle, ctypes.c_char_p, ctypes.c_size_t,
                                 ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p)), c_size_p]),
    "qdb_prefix_count": (c_error, [c_handle, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64)]),
    "qdb_error": (ctypes.c_char_p, [c_error]),
    "qdb_version": (ctypes.c_char_p, []),
}

for _name, (_res, _args) in _PROTOTYPES.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

# qdb_set_option is variadic: no argtypes, the int passed as a c_int
set_option = lib.qdb_set_option
set_option.restype = c_error
OPTION_OPERATION_TIMEOUT = 0  # qdb_o_operation_timeout: int milliseconds
OPTION_HIVE_KEY_FILE = 1      # qdb_o_hive_key_file: const char * path
PROTOCOL_TCP = 0
