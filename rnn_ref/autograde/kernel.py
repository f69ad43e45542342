"""The sandboxed kernel: ``python -m rnn_ref.autograde.kernel --sandbox DIR ... -f CONN``.

Launched by the KernelManager of :func:`rnn_ref.autograde.sandbox.make_kernel_manager`. Before
any student code can run, in one thread, it:

1. sends its stdout/stderr (ipykernel's logs; cell outputs go over zmq) to
   ``DIR/.kernel/kernel.log``, so nothing reaches the grader's terminal;
2. sets ``RLIMIT_AS``, ``RLIMIT_CPU`` (hard limit 5 s above the soft one), ``RLIMIT_FSIZE`` and
   ``RLIMIT_CORE = 0``;
3. makes itself a child subreaper (orphans of its children stay in its tree, so killing the
   kernel's tree catches them), and a session leader if it is not one already
   (jupyter_client starts it in a new session, so the grader can signal the whole group);
4. drops every capability if it has any (started as root);
5. applies Landlock (:func:`rnn_ref.autograde.sandbox.read_allowlist` and friends) and a
   seccomp network filter;
6. sets ``RNN_COURSE_SANDBOX`` to ``landlock-<abi>`` or ``none`` (Landlock unavailable: the
   kernel still starts, with only the other layers) and ``RNN_COURSE_SANDBOX_FEATURES``;
7. makes an import of a denied package (``torch``, ``rnn_ref.numpy``...) raise
   ``ModuleNotFoundError`` instead of ``PermissionError`` (only a nicer error: Landlock is what
   denies it);
8. runs ipykernel in this same process.

If Landlock is available but fails to apply, the kernel exits instead of running unsandboxed;
it also refuses to start if more than one thread exists at that point (a Landlock domain is per
thread, and threads that already exist would stay unrestricted).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
from pathlib import Path

from . import landlock, sandbox

# Submodules of rnn_ref that a student's code may not import (their files are unreadable).
_DENIED_SUBMODULES = ("rnn_ref.numpy", "rnn_ref.torch", "rnn_ref.autograde")


def _parse(argv):
    p = argparse.ArgumentParser(prog="python -m rnn_ref.autograde.kernel")
    p.add_argument("--sandbox", required=True, help="the only directory the kernel may write")
    p.add_argument("--memory", type=int, default=sandbox.Limits.memory_bytes, help="RLIMIT_AS")
    p.add_argument("--cpu", type=int, default=sandbox.Limits.cpu_s, help="RLIMIT_CPU (s)")
    p.add_argument("--fsize", type=int, default=sandbox.Limits.file_bytes, help="RLIMIT_FSIZE")
    p.add_argument("--deny", default="torch", help="comma-separated packages not to allow")
    p.add_argument("-f", dest="connection_file", required=True)
    return p.parse_known_args(argv)


def _redirect_output(log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)


def _set_limits(memory: int, cpu: int, fsize: int) -> list[str]:
    applied = []
    wanted = [
        ("RLIMIT_AS", memory, memory),
        ("RLIMIT_CPU", cpu, cpu + 5),  # SIGXCPU at the soft limit, SIGKILL at the hard one
        ("RLIMIT_FSIZE", fsize, fsize),
        ("RLIMIT_CORE", 0, 0),
    ]
    for name, soft, hard in wanted:
        which = getattr(resource, name)
        _, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        try:
            resource.setrlimit(which, (soft, hard))
            applied.append(name)
        except (ValueError, OSError):
            pass
    return applied


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


class _DeniedImports:
    """A meta-path finder: denied modules are 'not found' rather than 'permission denied'."""

    def __init__(self, names, prefixes):
        self.names = frozenset(names)
        self.prefixes = tuple(prefixes)

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in self.names or any(
            fullname == p or fullname.startswith(p + ".") for p in self.prefixes
        ):
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (not available in the grading sandbox)",
                name=fullname,
            )
        return None


def _denied_top_names(deny: list[str]) -> set[str]:
    names = set()
    for package in deny:
        for pattern in sandbox._package_patterns(package):
            if pattern.isidentifier():
                names.add(pattern)
            elif pattern.endswith(".py") and pattern[:-3].isidentifier():
                names.add(pattern[:-3])
    return names


def restrict(sandbox_dir: Path, memory: int, cpu: int, fsize: int, deny: list[str]) -> str:
    """Apply every layer to this process; return the value of ``RNN_COURSE_SANDBOX``."""
    features = [f"rlimit:{n}" for n in _set_limits(memory, cpu, fsize)]
    if sandbox.become_subreaper():
        features.append("subreaper")
    try:
        os.setsid()  # already a session leader when started by jupyter_client (EPERM)
    except OSError:
        pass
    if sandbox.drop_capabilities():
        features.append("no-capabilities")
    # Everything the restriction needs is computed before it (importlib.metadata etc.).
    read = sandbox.read_allowlist(deny)
    listing = sandbox.list_allowlist(deny)
    write = sandbox.write_allowlist(sandbox_dir)
    denied_names = _denied_top_names(deny)
    if _threads() != 1:
        raise SystemExit(f"refusing to sandbox: {_threads()} threads exist already")
    mode = "none"
    if landlock.abi_version() >= 1:
        abi = landlock.restrict(read, write, list_only=listing)  # raises: the kernel exits
        mode = f"landlock-{abi}"
        features.append(mode)
    try:
        if sandbox.deny_network_syscalls():
            features.append("seccomp-network")
    except OSError:
        pass
    os.environ[sandbox.SANDBOX_ENV] = mode
    os.environ[sandbox.SANDBOX_ENV + "_FEATURES"] = " ".join(features)
    sys.meta_path.insert(0, _DeniedImports(denied_names, _DENIED_SUBMODULES))
    return mode


def main(argv=None) -> None:
    args, rest = _parse(sys.argv[1:] if argv is None else argv)
    sandbox_dir = Path(args.sandbox).resolve()
    _redirect_output(sandbox_dir / sandbox.KERNEL_SUBDIR / "kernel.log")
    deny = [d for d in args.deny.split(",") if d]
    restrict(sandbox_dir, args.memory, args.cpu, args.fsize, deny)

    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(
        argv=["-f", args.connection_file, "--HistoryManager.hist_file=:memory:", *rest]
    )


if __name__ == "__main__":
    main()
