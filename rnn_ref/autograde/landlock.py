"""A small ctypes wrapper of Linux Landlock (``man 7 landlock``), for the grading sandbox.

Landlock lets an unprivileged process take away, irreversibly, its own (and its future
children's) access to the file system, to TCP ports and to processes outside its domain:

* :func:`abi_version` says which Landlock ABI the running kernel offers (0: none);
* :func:`restrict` applies an allow-list to the *calling thread* (and every thread or process it
  creates afterwards). Call it while the process has a single thread: a Landlock domain is per
  thread, and threads that already exist keep their access (ABI 7 has no way to sync them).

What a restricted process can still do (Landlock does not cover it): ``stat``/``readlink``/
``access`` on any path (names and metadata, not contents), walking into directories it cannot
list, ``chdir``, UDP and raw sockets, connecting to *pathname* Unix sockets (``seccomp`` in
:mod:`.sandbox` closes those), ioctls on files opened before the restriction. Landlock also
denies ``mount``/``pivot_root`` and ``ptrace`` of processes outside the domain (so
``/proc/<pid>/mem``, ``environ``, ``cwd``, ``fd`` of the grader are out of reach).

Kernel structures used (``include/uapi/linux/landlock.h``)::

    struct landlock_ruleset_attr {      /* 8 bytes at ABI 1-3, 16 at ABI 4-5, 24 from ABI 6 */
        __u64 handled_access_fs;        /* ABI 1 */
        __u64 handled_access_net;       /* ABI 4 */
        __u64 scoped;                   /* ABI 6 */
    };
    struct landlock_path_beneath_attr { /* packed: 12 bytes */
        __u64 allowed_access;
        __s32 parent_fd;
    } __attribute__((packed));

The size passed to ``landlock_create_ruleset`` is the one the running ABI knows (a kernel
rejects a bigger struct with non-zero unknown fields with E2BIG).
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
from collections.abc import Iterable

__all__ = ["abi_version", "restrict", "ACCESS_FS", "FILE_RIGHTS"]

# Syscall numbers: the same on x86_64 and aarch64 (and every arch using the generic table).
_SYS = {"create_ruleset": 444, "add_rule": 445, "restrict_self": 446}
_SUPPORTED_MACHINES = {"x86_64", "amd64", "aarch64", "arm64"}

_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights, with the ABI that introduced them.
ACCESS_FS = {
    "EXECUTE": (1 << 0, 1),
    "WRITE_FILE": (1 << 1, 1),
    "READ_FILE": (1 << 2, 1),
    "READ_DIR": (1 << 3, 1),
    "REMOVE_DIR": (1 << 4, 1),
    "REMOVE_FILE": (1 << 5, 1),
    "MAKE_CHAR": (1 << 6, 1),
    "MAKE_DIR": (1 << 7, 1),
    "MAKE_REG": (1 << 8, 1),
    "MAKE_SOCK": (1 << 9, 1),
    "MAKE_FIFO": (1 << 10, 1),
    "MAKE_BLOCK": (1 << 11, 1),
    "MAKE_SYM": (1 << 12, 1),
    "REFER": (1 << 13, 2),
    "TRUNCATE": (1 << 14, 3),
    "IOCTL_DEV": (1 << 15, 5),
}
_FS = {name: bit for name, (bit, _) in ACCESS_FS.items()}
# The only rights the kernel accepts in a rule on a non-directory (others: EINVAL).
FILE_RIGHTS = (
    _FS["EXECUTE"] | _FS["WRITE_FILE"] | _FS["READ_FILE"] | _FS["TRUNCATE"] | _FS["IOCTL_DEV"]
)
_READ_DIR_RIGHTS = _FS["READ_FILE"] | _FS["READ_DIR"] | _FS["EXECUTE"]

_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1  # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


assert ctypes.sizeof(_RulesetAttr) == 24, "landlock_ruleset_attr must be 3 x u64"
assert ctypes.sizeof(_PathBeneathAttr) == 12, "landlock_path_beneath_attr must be packed"


def _ruleset_attr_size(abi: int) -> int:
    """Bytes of ``landlock_ruleset_attr`` the ABI knows: up to ``scoped`` (6), ``net`` (4)."""
    return 24 if abi >= 6 else 16 if abi >= 4 else 8


_libc = None


def _lib():
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        libc.prctl.restype = ctypes.c_int
        _libc = libc
    return _libc


def _syscall(name: str, *args) -> int:
    ctypes.set_errno(0)
    result = _lib().syscall(ctypes.c_long(_SYS[name]), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_{name}: {os.strerror(err)}")
    return result


def abi_version() -> int:
    """The Landlock ABI version of the running kernel; 0 when unavailable. Never raises."""
    try:
        if platform.system() != "Linux" or platform.machine().lower() not in _SUPPORTED_MACHINES:
            return 0
        return max(0, _syscall("create_ruleset", None, ctypes.c_size_t(0), ctypes.c_uint32(1)))
    except Exception:  # ENOSYS (old kernel), EOPNOTSUPP (disabled at boot), no libc ...
        return 0


def handled_fs(abi: int) -> int:
    """Every filesystem right the given ABI knows (the ones a ruleset can deny)."""
    return sum(bit for bit, since in ACCESS_FS.values() if since <= abi)


def _add_path_rule(ruleset_fd: int, path, access: int, handled: int, dirs_only=False) -> bool:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return False
    try:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        if dirs_only and not is_dir:
            return False
        allowed = access & handled if is_dir else access & handled & FILE_RIGHTS
        if not allowed:
            return False
        attr = _PathBeneathAttr(allowed_access=allowed, parent_fd=fd)
        _syscall(
            "add_rule",
            ctypes.c_int(ruleset_fd),
            ctypes.c_int(_RULE_PATH_BENEATH),
            ctypes.byref(attr),
            ctypes.c_uint32(0),
        )
        return True
    finally:
        os.close(fd)


def restrict(
    read: Iterable,
    write: Iterable,
    *,
    allow_tcp: bool = False,
    scope: bool = True,
    list_only: Iterable = (),
) -> int:
    """Restrict the calling thread, irreversibly, to the given paths; return the ABI used.

    * ``read``: read and execute beneath each directory (``READ_FILE|READ_DIR|EXECUTE``), or of
      each file (``READ_FILE|EXECUTE``);
    * ``write``: every right the ABI knows beneath each directory (create, remove, rename within,
      truncate, make sockets...), or every file right of each file;
    * ``list_only``: directories whose entries may be listed, without reading their files
      (needed where Python's import system lists a directory that holds something denied);
    * everything else the ABI handles is denied, including TCP ``bind``/``connect`` from ABI 4
      unless ``allow_tcp``, and (``scope``, ABI 6) signals to, and connections to abstract Unix
      sockets of, processes outside this sandbox.

    Paths that do not exist are skipped. Sets ``PR_SET_NO_NEW_PRIVS`` (required by Landlock).
    Raises :class:`OSError` if Landlock is unavailable: the caller decides what to do then.
    """
    abi = abi_version()
    if abi < 1:
        raise OSError(errno.EOPNOTSUPP, "Landlock is not available on this kernel")
    fs = handled_fs(abi)
    net = 0 if allow_tcp or abi < 4 else _NET_BIND_TCP | _NET_CONNECT_TCP
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if scope and abi >= 6 else 0
    attr = _RulesetAttr(handled_access_fs=fs, handled_access_net=net, scoped=scoped)
    ruleset_fd = _syscall(
        "create_ruleset",
        ctypes.byref(attr),
        ctypes.c_size_t(_ruleset_attr_size(abi)),
        ctypes.c_uint32(0),
    )
    try:
        for path in read:
            # A readable directory also gets READ_DIR; a file only the file rights.
            _add_path_rule(ruleset_fd, path, _READ_DIR_RIGHTS, fs)
        for path in write:
            _add_path_rule(ruleset_fd, path, fs, fs)
        for path in list_only:
            _add_path_rule(ruleset_fd, path, _FS["READ_DIR"], fs, dirs_only=True)
        if _lib().prctl(
            ctypes.c_int(_PR_SET_NO_NEW_PRIVS), *(ctypes.c_ulong(v) for v in (1, 0, 0, 0))
        ):
            err = ctypes.get_errno()
            raise OSError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")
        _syscall("restrict_self", ctypes.c_int(ruleset_fd), ctypes.c_uint32(0))
    finally:
        os.close(ruleset_fd)
    return abi
