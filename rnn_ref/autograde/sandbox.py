"""Run a student's Jupyter kernel in a sandbox, so that grading a hostile notebook is safe.

The grader side calls :func:`make_kernel_manager` and runs the notebook with nbclient; the
kernel process (:mod:`rnn_ref.autograde.kernel`) restricts itself before ipykernel starts, so
no student code ever runs unrestricted. Layers, each reported by :func:`enforced`:

* **Landlock** (Linux >= 5.13, unprivileged; :mod:`.landlock`): the kernel may read only the
  Python installation, the system directories, the site-packages entries of allowed packages,
  and from this package only ``rnn_ref/__init__.py`` and ``rnn_ref/grading/`` (the reference
  implementations ``rnn_ref.numpy``/``rnn_ref.torch``, this sandbox, the rest of the
  repository -- solutions, tests -- and every other file of the machine are unreadable). It may
  write only beneath its sandbox directory (plus ``/dev/null``, ``/dev/zero``, ``/dev/full``).
  From ABI 4 it cannot bind or connect TCP sockets; from ABI 6 it cannot signal processes
  outside its own sandbox nor reach their abstract Unix sockets. ``ptrace``-like access to
  outside processes (``/proc/<pid>/mem``, ``environ``, ``cwd``, ``fd``) is denied at any ABI.
* **seccomp** (:func:`deny_network_syscalls`): ``socket()`` only for ``AF_UNIX`` stream
  sockets (no UDP, raw, netlink, ...), no ``connect()`` at all (so no pathname Unix socket
  outside either, e.g. ``/var/run/docker.sock``), no ``io_uring``, no kernel keyrings.
* **Capabilities** (:func:`drop_capabilities`): a kernel started as root drops every
  capability, from its bounding set too, so it cannot raise its resource limits again
  (``CAP_SYS_RESOURCE``) and an ``exec`` gains none back.
* **Resource limits** (:class:`Limits`): ``RLIMIT_AS`` (a memory bomb raises ``MemoryError`` in
  the cell), ``RLIMIT_CPU`` (the kernel is killed), ``RLIMIT_FSIZE``, no core dumps; the cell
  and whole-notebook timeouts and the output cap are the caller's (nbclient's) job.
* **Processes**: the kernel runs in its own session and is a child subreaper; a grading worker
  that calls :func:`become_subreaper` first can :func:`kill_descendants` after the kernel stops,
  which also catches double-forked ``setsid`` daemons.
* **Environment**: the kernel gets a fresh environment (no variable of the grader leaks), with
  ``HOME``, ``TMPDIR`` and every Jupyter/IPython/matplotlib directory inside the sandbox, and
  talks to the grader over Unix sockets inside the sandbox (``ipc`` transport, no TCP).

What is *not* defended: a fork bomb or thread bomb (``RLIMIT_NPROC`` does not apply to root and
counts a whole user; use a cgroup ``pids.max``, e.g. ``systemd-run --scope -p TasksMax=``),
total memory of many processes (each has its own ``RLIMIT_AS``; use a cgroup ``memory.max``),
disk usage within the sandbox beyond ``RLIMIT_FSIZE`` per file, reading world-readable system
files (``/usr``, ``/etc`` minus well-known secrets, ``/proc``, ``/sys``), command lines of other
processes (``/proc/*/cmdline``), CPU side channels, kernel exploits. Without Landlock (old
kernel, or disabled), the file system and TCP are *not* protected: :func:`enforced` says so and
the kernel sets ``RNN_COURSE_SANDBOX=none``.

This module is imported by the sandboxed kernel before it restricts itself: keep its imports
light (no jupyter_client, psutil or numpy at module level; no threads).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import os
import platform
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from . import landlock

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from jupyter_client import KernelManager

__all__ = [
    "KERNEL_NAME",
    "Limits",
    "become_subreaper",
    "deny_network_syscalls",
    "drop_capabilities",
    "enforced",
    "kernel_argv",
    "kernel_env",
    "kill_descendants",
    "list_allowlist",
    "make_kernel_manager",
    "no_new_privs",
    "read_allowlist",
    "write_allowlist",
]

KERNEL_NAME = "rnn-course-sandbox"
SANDBOX_ENV = "RNN_COURSE_SANDBOX"
KERNEL_SUBDIR = ".kernel"  # inside the sandbox: home, tmp, runtime dirs, sockets, kernel.log


@dataclass(frozen=True)
class Limits:
    """Limits for one notebook. The kernel applies the ``RLIMIT_*`` ones to itself (inherited by
    its children); ``cell_timeout_s``, ``wall_s`` and ``output_bytes`` are the caller's to
    enforce (nbclient ``timeout``, a deadline around ``execute``, a cap on the outputs)."""

    cell_timeout_s: int = 60  # per cell (nbclient timeout)
    wall_s: int = 300  # whole notebook, including kernel startup
    cpu_s: int = 300  # RLIMIT_CPU of the kernel process (SIGXCPU, then SIGKILL 5 s later)
    memory_bytes: int = 3 * 2**30  # RLIMIT_AS of the kernel (virtual memory)
    output_bytes: int = 1_000_000  # cap on a notebook's outputs
    file_bytes: int = 64 * 2**20  # RLIMIT_FSIZE: largest file the kernel may write


# --- what the kernel may read -------------------------------------------------------------
# /etc is handled entry by entry (see _ETC_SECRETS).
_SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/proc", "/sys")
# Device files: never all of /dev (as root, reading /dev/sda would read every file).
_DEVICES_READ = ("/dev/urandom", "/dev/random")
_DEVICES_WRITE = ("/dev/null", "/dev/zero", "/dev/full")
# Well-known secrets under /etc (everything else there is readable: much code opens files in
# /etc if they exist and fails on PermissionError, e.g. mimetypes with /etc/mime.types).
_ETC_SECRETS = (
    "shadow",
    "shadow-",
    "gshadow",
    "gshadow-",
    "sudoers",
    "sudoers.d",
    "ssh",
    "ssl/private",
    "pki/tls/private",
    "security/opasswd",
    "krb5.keytab",
    "credstore",
    "credstore.encrypted",
    "ipsec.secrets",
    "ppp/chap-secrets",
    "ppp/pap-secrets",
    "wireguard",
    "NetworkManager/system-connections",
    "letsencrypt",
    "docker",
    "containerd",
)
# Besides a package's own top-level entries (from its installed metadata).
_EXTRA_DENY = {
    "torch": ("torchgen", "functorch", "nvidia", "nvidia_*", "triton", "triton-*", "torch.libs"),
}


def _rnn_ref_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def _install_dirs() -> list[Path]:
    """The directories packages are installed in, for this interpreter and its base (not the
    rest of sys.path)."""
    import site

    dirs = []
    for base in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        paths = sysconfig.get_paths(vars={"base": base, "platbase": base})
        dirs += [Path(paths["purelib"]), Path(paths["platlib"])]
    with contextlib.suppress(Exception):
        dirs += [Path(p) for p in site.getsitepackages()]
    with contextlib.suppress(Exception):
        dirs.append(Path(site.getusersitepackages()))
    for pattern in ("usr/lib/python3*/*-packages", "usr/local/lib/python3*/*-packages"):
        dirs += Path("/").glob(pattern)
    return _existing_dirs(dirs)


def _site_dirs() -> list[Path]:
    """Every directory a denied package could be imported from."""
    return _existing_dirs([*_install_dirs(), *(Path(p) for p in sys.path if p)])


def _existing_dirs(dirs) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        with contextlib.suppress(OSError):
            r = d.resolve()
            if r.is_dir() and r not in out:
                out.append(r)
    return out


def _package_patterns(package: str) -> set[str]:
    """Glob patterns of the top-level site-packages entries of ``package``."""
    import importlib.metadata as md

    patterns = {package, f"{package}.py", f"{package}-*.dist-info", f"{package}-*.egg-info"}
    patterns |= {f"{package}.libs", f"{package}.pth", f"__editable__.{package}-*.pth"}
    patterns.add(f"__editable___{package}_*_finder.py")
    patterns |= set(_EXTRA_DENY.get(package, ()))
    dists = []
    with contextlib.suppress(md.PackageNotFoundError):
        dists.append(md.distribution(package))
    if not dists:  # an import name that is not a distribution name (PIL -> pillow)
        for name in md.packages_distributions().get(package, ()):
            with contextlib.suppress(md.PackageNotFoundError):
                dists.append(md.distribution(name))
    for dist in dists:
        for f in dist.files or ():
            top = f.parts[0] if f.parts else ""
            if top and top not in ("..", "__pycache__", "."):
                patterns.add(top)
    return patterns


def _denied(deny_packages: Iterable[str]) -> set[Path]:
    """Paths that no broad rule may cover: denied packages, this package, the repository."""
    out: set[Path] = set()
    site_dirs = _site_dirs()
    for package in deny_packages:
        patterns = _package_patterns(package)
        for d in site_dirs:
            with contextlib.suppress(OSError):
                for entry in os.scandir(d):
                    if any(fnmatch.fnmatchcase(entry.name, p) for p in patterns):
                        out.add(Path(entry.path).resolve())
    pkg = _rnn_ref_dir()
    out.add(pkg)
    if pkg.parent not in _install_dirs():  # a checkout (editable install): hide the repository
        out.add(pkg.parent)
    return out


def _expand(root: Path, denied: set[Path], read: list, listing: list, seen: set, parent=None):
    """Allow ``root`` for reading, except the denied paths beneath it: a directory holding one
    is only listable, and each of its other entries is allowed in turn. An entry (not a root)
    that resolves beneath a denied path, through a symlink, is skipped."""
    given = root
    try:
        root = root.resolve()
    except OSError:
        return
    if root in seen or root in denied or not os.path.lexists(root):
        return
    if parent is not None and parent not in root.parents:  # a symlink out of its directory
        if any(d in root.parents for d in denied):
            return
    seen.add(root)
    if not any(root in d.parents for d in denied):
        read.append(str(given))  # as given: Landlock resolves it (/etc/mtab -> /proc/self/...)
        return
    listing.append(str(root))
    with contextlib.suppress(OSError):
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            _expand(Path(entry.path), denied, read, listing, seen, parent=root)


@lru_cache(maxsize=8)
def _plan(deny_packages: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    denied = _denied(deny_packages)
    roots = [Path(p) for p in _SYSTEM_READ]
    roots += [Path("/etc") / name for name in _etc_entries()]
    for base in {sys.base_prefix, sys.base_exec_prefix}:
        roots += [Path(base) / "lib", Path(base) / "lib64", Path(base) / "bin"]
    roots += [Path(sys.prefix), Path(sys.exec_prefix), Path(sys.executable).resolve().parent]
    roots += [Path(p) for p in _DEVICES_READ]
    read: list[str] = []
    listing: list[str] = []
    seen: set[Path] = set()
    for root in roots:
        _expand(root, denied, read, listing, seen)
    # From this package: its __init__ and the grading helpers only. Its directory must be
    # listable for Python's FileFinder to find rnn_ref.grading (listing shows names only).
    pkg = _rnn_ref_dir()
    read += [str(pkg / "__init__.py"), str(pkg / "grading")]
    listing.append(str(pkg))
    return tuple(dict.fromkeys(read)), tuple(dict.fromkeys(listing))


def _etc_entries() -> list[str]:
    """Entries of /etc minus the secrets (nested ones like ssl/private by expanding)."""
    top = {s.split("/")[0] for s in _ETC_SECRETS}
    out = []
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir("/etc")):
            if name not in top:
                out.append(name)
    for secret in _ETC_SECRETS:
        head, _, rest = secret.partition("/")
        if rest and os.path.isdir(f"/etc/{head}"):
            with contextlib.suppress(OSError):
                for name in os.listdir(f"/etc/{head}"):
                    if name != rest.split("/")[0]:
                        out.append(f"{head}/{name}")
    return out


def read_allowlist(deny_packages: Iterable[str] = ("torch",)) -> list[str]:
    """Paths a sandboxed kernel may read (and execute) beneath: the Python installation, the
    system directories (``/etc`` without its secrets, ``/dev/urandom`` and ``/dev/random``
    only), every site-packages entry except those of ``deny_packages``, and from ``rnn_ref``
    only ``__init__.py`` and ``grading/``. See :func:`list_allowlist` for the directories
    that may only be listed."""
    return list(_plan(tuple(deny_packages))[0])


def list_allowlist(deny_packages: Iterable[str] = ("torch",)) -> list[str]:
    """Directories whose entries a sandboxed kernel may list but not read (the parents of what
    is denied: site-packages, the ``rnn_ref`` package directory...). Python's import system
    lists a directory to find modules in it, and would fail to import anything from a
    directory it cannot list (Landlock applies a rule to a whole hierarchy, so a readable
    site-packages would make a denied package in it readable)."""
    return list(_plan(tuple(deny_packages))[1])


def write_allowlist(sandbox_dir: Path | str) -> list[str]:
    """Paths a sandboxed kernel may create, write, delete beneath: its sandbox and a few
    harmless devices."""
    return [str(Path(sandbox_dir).resolve()), *_DEVICES_WRITE]


# --- the kernel process restricting itself --------------------------------------------------
_lib = landlock._lib  # the C library, loaded once, with prctl/syscall return types set


def _prctl(option: int, *args: int) -> int:
    values = [ctypes.c_ulong(a) for a in (*args, 0, 0, 0, 0)[:4]]
    ctypes.set_errno(0)
    return _lib().prctl(ctypes.c_int(option), *values)


_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2


def become_subreaper() -> bool:
    """Make the current process a child subreaper: orphaned descendants (double-forked daemons,
    children of a killed kernel) are reparented to it instead of init, so that
    :func:`kill_descendants` finds them. False if it is not supported."""
    try:
        return sys.platform.startswith("linux") and _prctl(_PR_SET_CHILD_SUBREAPER, 1) == 0
    except Exception:
        return False


def no_new_privs() -> bool:
    """Set ``PR_SET_NO_NEW_PRIVS`` (no setuid/file-capability gain on exec; needed by seccomp)."""
    try:
        return sys.platform.startswith("linux") and _prctl(_PR_SET_NO_NEW_PRIVS, 1) == 0
    except Exception:
        return False


def kill_descendants(timeout: float = 3.0, *, pid: int | None = None) -> list[int]:
    """SIGKILL every descendant of the current process (or of ``pid``), wait for them, and
    return their pids. Repeats until none is left (a process may fork while it is killed) or
    ``timeout`` runs out. Call it in a per-notebook worker that called
    :func:`become_subreaper`: otherwise a daemon that left the tree is not found, and every
    child of the worker is killed, not only the kernel's."""
    import time

    import psutil

    try:
        root = psutil.Process(pid if pid is not None else os.getpid())
    except psutil.NoSuchProcess:
        return []
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        try:
            procs = root.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        procs = [p for p in procs if p.pid not in killed or _alive(p)]
        if not procs:
            break
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                p.kill()
            killed.add(p.pid)
        left = deadline - time.monotonic()
        if left <= 0:
            break
        psutil.wait_procs(procs, timeout=min(left, 1.0))
    return sorted(killed)


def _alive(p) -> bool:
    import psutil

    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _read_status(key: str) -> int | None:
    with contextlib.suppress(OSError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1], 16)
    return None


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


_CAPSET_NR = {"x86_64": 126, "aarch64": 91}


def drop_capabilities() -> bool:
    """Drop every capability of the calling thread: effective, permitted, inheritable, ambient
    and bounding sets (so an exec, even of a root-owned binary as root, gains none). True if
    none is left. A kernel started as root would otherwise raise its own rlimits
    (``CAP_SYS_RESOURCE``), signal anything (``CAP_KILL``), or read raw devices."""
    if not sys.platform.startswith("linux"):
        return False
    keys = ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb")
    if all(_read_status(k) == 0 for k in keys):
        return True
    try:
        _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
        for cap in range(last + 1):
            _prctl(_PR_CAPBSET_DROP, cap)  # needs CAP_SETPCAP: before the capset below
        header = _CapHeader(version=0x20080522, pid=0)  # _LINUX_CAPABILITY_VERSION_3
        data = (_CapData * 2)()
        nr = _CAPSET_NR.get(platform.machine())
        if nr is not None:
            _lib().syscall(ctypes.c_long(nr), ctypes.byref(header), data)
    except Exception:
        return False
    return all(_read_status(k) == 0 for k in keys)


# seccomp: a classic-BPF filter on the syscall number and arguments (struct seccomp_data:
# int nr @0, u32 arch @4, u64 ip @8, u64 args[6] @16; little-endian, low 32 bits first).
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_NR = {
    "x86_64": {"socket": 41, "connect": 42, "io_uring_setup": 425, "add_key": 248},
    "aarch64": {"socket": 198, "connect": 203, "io_uring_setup": 425, "add_key": 217},
}
_DENIED_CALLS = ("connect", "io_uring_setup", "add_key", "request_key", "keyctl")


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k). Denied calls fail with EACCES (PermissionError)."""
    ld, jeq, jge, and_, ret = 0x20, 0x15, 0x35, 0x54, 0x06  # BPF_LD|W|ABS, JMP|JEQ|K, ...
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EACCES  # SECCOMP_RET_ALLOW, RET_ERRNO
    nr = dict(_NR[machine])
    nr["request_key"], nr["keyctl"] = nr["add_key"] + 1, nr["add_key"] + 2
    prog: list = [(ld, 0, 0, 4), (jeq, 0, "DENY", _AUDIT_ARCH[machine]), (ld, 0, 0, 0)]
    prog.append((jge, "DENY", 0, 0x40000000))  # x32 syscalls on x86_64
    prog.append((jeq, "SOCKET", 0, nr["socket"]))
    prog += [(jeq, "DENY", 0, nr[name]) for name in _DENIED_CALLS]
    prog.append((ret, 0, 0, allow))
    labels = {"SOCKET": len(prog)}
    # AF_NETLINK fails with EOPNOTSUPP: libzmq's getifaddrs() aborts the process on EACCES.
    prog += [(ld, 0, 0, 16), (jeq, "NOTSUP", 0, 16), (jeq, 0, "DENY", 1)]  # AF_UNIX only
    prog += [(ld, 0, 0, 24), (and_, 0, 0, 0xF), (jeq, 0, "DENY", 1)]  # type & mask == STREAM
    prog.append((ret, 0, 0, allow))
    labels["NOTSUP"] = len(prog)
    prog.append((ret, 0, 0, 0x00050000 | errno.EOPNOTSUPP))
    labels["DENY"] = len(prog)
    prog.append((ret, 0, 0, deny))
    out = []
    for i, (code, jt, jf, k) in enumerate(prog):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        out.append((code, jt, jf, k))
    return out


def _seccomp_supported() -> bool:
    return (
        sys.platform.startswith("linux")
        and platform.machine() in _AUDIT_ARCH
        and _read_status("Seccomp") is not None
    )


def deny_network_syscalls() -> bool:
    """Install a seccomp filter on the calling thread and its future children: ``socket()``
    only for ``AF_UNIX``/``SOCK_STREAM`` (what the ``ipc`` transport needs), no ``connect()``,
    ``io_uring`` or keyring calls. ``socketpair()``, ``bind``/``listen``/``accept`` stay allowed.
    Sets no-new-privs. False (nothing installed) where seccomp or the architecture is not
    supported. Call it while single-threaded, like Landlock."""
    if not _seccomp_supported() or not no_new_privs():
        return False
    program = _seccomp_program(platform.machine())
    filters = (_SockFilter * len(program))(*[_SockFilter(*ins) for ins in program])
    fprog = _SockFprog(len(program), filters)
    return _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog)) == 0


def enforced() -> dict[str, bool | int]:
    """What a sandboxed kernel will be held to on this machine, for reports."""
    linux = sys.platform.startswith("linux")
    abi = landlock.abi_version()
    return {
        "landlock": abi,  # the Landlock ABI (0: none, nothing below that needs it holds)
        "filesystem": abi >= 1,  # reads outside the allow-list, writes outside the sandbox
        "tcp": abi >= 4 or _seccomp_supported(),  # no TCP bind/connect
        "network": _seccomp_supported(),  # no UDP/raw/netlink sockets, no connect() at all
        "signals": abi >= 6,  # no signal to a process outside the sandbox
        "capabilities_dropped": linux,
        "rlimits": linux,  # RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_CORE
        "subreaper": linux,
        "environment_scrubbed": True,
    }


# --- the grader side: a KernelManager that launches the sandboxed kernel ---------------------
def _kernel_dirs(sandbox_dir: Path) -> dict[str, Path]:
    k = sandbox_dir / KERNEL_SUBDIR
    return {
        "HOME": k / "home",
        "TMPDIR": k / "tmp",
        "IPYTHONDIR": k / "ipython",
        "JUPYTER_RUNTIME_DIR": k / "runtime",
        "JUPYTER_DATA_DIR": k / "data",
        "JUPYTER_CONFIG_DIR": k / "config",
        "MPLCONFIGDIR": k / "matplotlib",
        "XDG_CACHE_HOME": k / "cache",
        "XDG_CONFIG_HOME": k / "config",
    }


def _needs_pythonpath(pkg_parent: Path) -> bool:
    """Whether a fresh interpreter would not find ``rnn_ref`` by itself (found only through the
    grader's PYTHONPATH or working directory): then the kernel gets PYTHONPATH."""
    if pkg_parent in _install_dirs():
        return False  # a regular install
    for name, module in list(sys.modules.items()):
        if name.startswith("__editable__") and "rnn_ref" in getattr(module, "MAPPING", {}):
            return False  # a setuptools editable install (meta-path finder)
    env_paths = {os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(":") if p}
    from_pth = str(pkg_parent) in {os.path.abspath(p) for p in sys.path[1:] if p}
    return not from_pth or str(pkg_parent) in env_paths  # a .pth path entry needs nothing


def kernel_env(sandbox_dir: Path | str, env_extra: dict | None = None) -> dict[str, str]:
    """The whole environment of a sandboxed kernel: nothing from the grader's."""
    sandbox_dir = Path(sandbox_dir).resolve()
    venv_bin = os.path.dirname(sys.executable)
    env = {
        "PATH": f"{venv_bin}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        **{k: str(v) for k, v in _kernel_dirs(sandbox_dir).items()},
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    pkg_parent = _rnn_ref_dir().parent
    if _needs_pythonpath(pkg_parent):
        env["PYTHONPATH"] = str(pkg_parent)
    env.update({str(k): str(v) for k, v in (env_extra or {}).items()})
    return env


def kernel_argv(
    sandbox_dir: Path | str, limits: Limits, deny_packages: Iterable[str] = ("torch",)
) -> list[str]:
    """The kernel command (``{connection_file}`` is filled in by jupyter_client). ``-s``: no
    user site-packages (HOME is writable by the student, a ``.pth`` there would run before the
    sandbox on a restart); ``-P``: the working directory (the sandbox) is not on sys.path."""
    return [
        sys.executable,
        "-s",
        "-P",
        "-B",
        "-m",
        "rnn_ref.autograde.kernel",
        "--sandbox",
        str(Path(sandbox_dir).resolve()),
        "--memory",
        str(int(limits.memory_bytes)),
        "--cpu",
        str(int(limits.cpu_s)),
        "--fsize",
        str(int(limits.file_bytes)),
        "--deny",
        ",".join(deny_packages),
        "-f",
        "{connection_file}",
    ]


@lru_cache(maxsize=1)
def _classes():
    import subprocess

    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_core.utils import run_sync
    from traitlets import Any, Dict, DottedObjectName, Unicode

    class OneSpecManager(KernelSpecManager):
        """Knows a single, in-memory kernel spec (nothing on disk the kernel could modify)."""

        spec = Any()

        def find_kernel_specs(self):
            return {KERNEL_NAME: ""}

        def get_kernel_spec(self, kernel_name, *args, **kwargs):
            if kernel_name != KERNEL_NAME:
                raise NoSuchKernel(kernel_name)
            return self.spec

        def get_all_specs(self):
            return {KERNEL_NAME: {"resource_dir": "", "spec": self.spec.to_dict()}}

    class SandboxKernelManager(KernelManager):
        """Starts the kernel with the sandbox's environment and working directory, whatever the
        caller (e.g. nbclient) passes: any ``env``/``cwd`` given to ``start_kernel`` is
        replaced. The manager's methods are synchronous, but :meth:`client` gives an *async*
        client: nbclient's cell timeout only works with one (a blocking ``get_msg`` would stall
        its event loop while a cell loops forever)."""

        client_class = DottedObjectName("jupyter_client.asynchronous.AsyncKernelClient")
        sandbox_dir = Unicode()
        sandbox_env = Dict()
        kernel_log = Unicode()

        async def _async_pre_start_kernel(self, **kw):
            kw["env"] = dict(self.sandbox_env)
            kw["cwd"] = self.sandbox_dir
            kw["stdin"] = subprocess.DEVNULL
            return await super()._async_pre_start_kernel(**kw)

        pre_start_kernel = run_sync(_async_pre_start_kernel)

    return OneSpecManager, SandboxKernelManager


def make_kernel_manager(
    sandbox_dir: Path | str,
    limits: Limits = Limits(),  # noqa: B008 (frozen dataclass)
    deny_packages: Iterable[str] = ("torch",),
    env_extra: dict | None = None,
) -> KernelManager:
    """A KernelManager (not started) whose kernel runs sandboxed in ``sandbox_dir``.

    The kernel is ``python -m rnn_ref.autograde.kernel`` (see :func:`kernel_argv`), over the
    ``ipc`` transport with its sockets and connection file in ``sandbox_dir/.kernel``, working
    directory ``sandbox_dir``, environment :func:`kernel_env`, no automatic restart. Its
    stdout/stderr (logs, not cell outputs) go to ``km.kernel_log``. Use it with nbclient::

        km = make_kernel_manager(sandbox, limits)
        client = NotebookClient(nb, km=km, timeout=limits.cell_timeout_s,
                                kernel_name=km.kernel_name)
        try:
            client.execute()
        finally:
            km.shutdown_kernel(now=True)

    nbclient starts the kernel itself (``km.start_kernel``) and, since it does not own ``km``,
    leaves shutting it down to the caller.
    """
    from jupyter_client.kernelspec import KernelSpec

    sandbox_dir = Path(sandbox_dir).resolve()
    sandbox_dir.mkdir(parents=True, exist_ok=True)
    kdir = sandbox_dir / KERNEL_SUBDIR
    for d in (kdir, *_kernel_dirs(sandbox_dir).values()):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    ipc = kdir / "ipc"
    if len(f"{ipc}-99") > 100:  # sun_path holds 107 bytes
        raise ValueError(f"sandbox path too long for a Unix socket: {sandbox_dir}")
    spec = KernelSpec(
        argv=kernel_argv(sandbox_dir, limits, deny_packages),
        display_name="Python 3 (grading sandbox)",
        language="python",
        interrupt_mode="signal",
        env={},
        metadata={},
    )
    spec_manager_cls, manager_cls = _classes()
    km = manager_cls(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=spec_manager_cls(spec=spec),
        transport="ipc",
        ip=str(ipc),
        connection_file=str(kdir / "connection.json"),
        autorestart=False,
        sandbox_dir=str(sandbox_dir),
        sandbox_env=kernel_env(sandbox_dir, env_extra),
        kernel_log=str(kdir / "kernel.log"),
    )
    return km
