"""The grading sandbox: a student's kernel cannot read the instructor's files, write outside its
directory, use the network, signal the grader, exhaust memory or CPU, or leave processes behind.

Most checks run one small "probe" notebook in a sandboxed kernel (module-scoped, a few seconds)
and assert on what each probe reported. Checks that need Landlock (or seccomp, or a given
Landlock ABI) are skipped, with the reason, where this machine does not offer it; the resource
limits, the timeout, the scrubbed environment and the process cleanup are checked everywhere.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("psutil")

import nbformat  # noqa: E402
import psutil  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: E402

import rnn_ref  # noqa: E402
from rnn_ref.autograde import landlock, sandbox  # noqa: E402
from rnn_ref.autograde.sandbox import Limits, make_kernel_manager  # noqa: E402

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the grading sandbox is Linux-only"
)

ABI = landlock.abi_version()
ENFORCED = sandbox.enforced()
needs_landlock = pytest.mark.skipif(
    ABI < 1, reason="Landlock unavailable here (abi_version() == 0): files are not sandboxed"
)
needs_abi4 = pytest.mark.skipif(
    ABI < 4 and not ENFORCED["network"],
    reason=f"Landlock ABI {ABI} < 4 and no seccomp: TCP is not restricted here",
)
needs_abi6 = pytest.mark.skipif(
    ABI < 6, reason=f"Landlock ABI {ABI} < 6: signals to outside processes are not scoped here"
)
needs_seccomp = pytest.mark.skipif(
    not ENFORCED["network"], reason="seccomp unavailable here: UDP/Unix sockets not restricted"
)

REPO = Path(rnn_ref.__file__).resolve().parents[1]
PKG = REPO / "rnn_ref"
SOLUTION = REPO / "solutions" / "ch02_rnn" / "ch02_rnn.ipynb"
FAST = Limits(cell_timeout_s=30, memory_bytes=3 * 2**30, file_bytes=2**20)


def run_notebook(sources, sandbox_dir, limits=FAST, deny=("torch",), env_extra=None):
    """Execute code cells in a sandboxed kernel; return the executed notebook."""
    km = make_kernel_manager(sandbox_dir, limits, deny, env_extra)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    client = NotebookClient(
        nb, km=km, timeout=limits.cell_timeout_s, kernel_name=km.kernel_name, allow_errors=True
    )
    try:
        client.execute()
    except Exception:
        log = Path(km.kernel_log)
        print("kernel log:", log.read_text()[-4000:] if log.exists() else "(none)")
        raise
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return nb


def cell_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif out.get("output_type") == "error":
            parts.append(f"{out['ename']}: {out['evalue']}")
        else:
            parts.append(json.dumps(out.get("data", {})))
    return "".join(parts)


def covered(path, entries) -> bool:
    """Whether a Landlock rule on one of ``entries`` would apply to ``path``."""
    p = Path(path).resolve()
    for e in entries:
        r = Path(e).resolve()
        if r == p or r in p.parents:
            return True
    return False


# --- The probe notebook -----------------------------------------------------------------------
PROBES = r"""
import glob, importlib, json, os, resource, socket, subprocess, sys
R = {}
def probe(name, fn):
    try:
        value = fn()
        R[name] = "ok" if value is None else "ok:" + str(value)[:2000]
    except BaseException as e:
        R[name] = type(e).__name__
def readable(p):
    try:
        with open(p, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False
def write(p, text="x"):
    with open(p, "w") as f:
        f.write(text)
def unguarded_import(name):
    sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_DeniedImports"]
    importlib.import_module(name)

probe("read_secret", lambda: open(SECRET).read())
probe("list_secret_dir", lambda: os.listdir(SECRET_DIR))
probe("read_solution", lambda: open(SOLUTION).read())
probe("read_reference", lambda: open(REFERENCE).read())
probe("read_autograde", lambda: open(AUTOGRADE).read())
probe("read_tests", lambda: open(TESTS).read())
def found(*patterns):
    return [p for pattern in patterns for p in glob.glob(pattern, recursive=True) if readable(p)]
def udp_send():
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", UDP_PORT))
def limits():
    names = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_CORE")
    return json.dumps([resource.getrlimit(getattr(resource, n)) for n in names])

probe("glob_root", lambda: found("/**/ch02_rnn.ipynb"))
probe("glob_repo", lambda: found(REPO + "/**/*.ipynb"))
probe("proc_parent_cwd", lambda: os.listdir(f"/proc/{GRADER_PID}/cwd"))
probe("proc_parent_environ", lambda: open(f"/proc/{GRADER_PID}/environ").read())
probe("read_raw_disk", lambda: found("/dev/[sv]d?", "/dev/nvme*", "/dev/mapper/*"))
probe("write_outside", lambda: write(os.path.join(SECRET_DIR, "pwned")))
probe("write_tmp", lambda: write(TMP_TARGET))
probe("write_inside", lambda: (write("inside.txt", "hello"), open("inside.txt").read())[1])
probe("write_home", lambda: write(os.path.expanduser("~/note.txt")))
probe("devnull", lambda: subprocess.run(["true"], stdout=subprocess.DEVNULL).returncode)
probe("import_numpy", lambda: __import__("numpy").ones(3).sum())
probe("import_grading", lambda: importlib.import_module("rnn_ref.grading.ch02_rnn").__name__)
probe("import_reference", lambda: importlib.import_module("rnn_ref.numpy"))
probe("import_torch", lambda: importlib.import_module("torch"))
probe("tcp_connect", lambda: socket.create_connection(("127.0.0.1", TCP_PORT), timeout=2))
probe("tcp_bind", lambda: socket.socket().bind(("127.0.0.1", 0)))
probe("udp_send", udp_send)
probe("unix_connect", lambda: socket.socket(socket.AF_UNIX).connect(UNIX_SOCKET))
probe("signal_grader", lambda: os.kill(GRADER_PID, 0))
probe("signal_init", lambda: os.kill(1, 0))
probe("raise_rlimit", lambda: resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2))
probe("rlimits", limits)
probe("file_too_big", lambda: write("big.bin", "x" * (FILE_BYTES + 1)))
probe("cwd", os.getcwd)
probe("sandbox_var", lambda: os.environ["RNN_COURSE_SANDBOX"])
probe("env", lambda: json.dumps(sorted(os.environ)))
probe("import_reference_unguarded", lambda: unguarded_import("rnn_ref.numpy"))
"""


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory):
    secret_dir = tmp_path_factory.mktemp("instructor")
    secret_token = f"TOPSECRET-{uuid.uuid4().hex}"
    (secret_dir / "answers.txt").write_text(secret_token)
    unix_path = secret_dir / "grader.sock"
    tmp_target = Path("/tmp") / f"rnn-sandbox-pwned-{uuid.uuid4().hex}"
    sandbox_dir = tmp_path_factory.mktemp("sandbox")
    with (
        socket.socket() as tcp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_UNIX) as unix,
    ):
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        unix.bind(str(unix_path))
        unix.listen()
        for s in (tcp, udp, unix):
            s.setblocking(False)
        values = {
            "SECRET": str(secret_dir / "answers.txt"),
            "SECRET_DIR": str(secret_dir),
            "SOLUTION": str(SOLUTION),
            "REFERENCE": str(PKG / "numpy" / "__init__.py"),
            "AUTOGRADE": str(PKG / "autograde" / "sandbox.py"),
            "TESTS": str(Path(__file__).resolve()),
            "REPO": str(REPO),
            "TMP_TARGET": str(tmp_target),
            "GRADER_PID": os.getpid(),
            "TCP_PORT": tcp.getsockname()[1],
            "UDP_PORT": udp.getsockname()[1],
            "UNIX_SOCKET": str(unix_path),
            "FILE_BYTES": FAST.file_bytes,
        }
        header = "".join(f"{k} = {v!r}\n" for k, v in values.items())
        os.environ["RNN_TEST_GRADER_SECRET"] = secret_token  # must not reach the kernel
        try:
            nb = run_notebook(
                [
                    header + PROBES,
                    "print(json.dumps(R))",
                    "x = bytearray(8 * 2**30)",
                    "import numpy as np\ny = np.ones(2**31)",
                    "print('alive', sum(range(10)))",
                ],
                sandbox_dir,
            )
        finally:
            del os.environ["RNN_TEST_GRADER_SECRET"]
            tmp_target.unlink(missing_ok=True)
        received = {}
        for name, s in (("tcp", tcp), ("udp", udp), ("unix", unix)):
            try:
                received[name] = s.accept() if name != "udp" else s.recv(16)
            except BlockingIOError:
                received[name] = None
    results = json.loads(cell_text(nb.cells[1]))
    return {
        "nb": nb,
        "results": results,
        "secret": secret_token,
        "secret_dir": secret_dir,
        "sandbox": sandbox_dir,
        "received": received,
    }


@needs_landlock
@pytest.mark.parametrize(
    "probe",
    [
        "read_secret",
        "list_secret_dir",
        "read_solution",
        "read_reference",
        "read_autograde",
        "read_tests",
        "proc_parent_cwd",
        "proc_parent_environ",
    ],
)
def test_cannot_read_outside_allowlist(probe_run, probe):
    assert probe_run["results"][probe] == "PermissionError"


@needs_landlock
def test_secret_never_in_outputs(probe_run):
    assert probe_run["secret"] not in nbformat.writes(probe_run["nb"])


@needs_landlock
def test_glob_search_finds_nothing_readable(probe_run):
    r = probe_run["results"]
    assert r["glob_root"] in ("ok:[]", "PermissionError")
    assert r["glob_repo"] in ("ok:[]", "PermissionError")
    assert r["read_raw_disk"] == "ok:[]"


@needs_landlock
def test_writes_only_inside_sandbox(probe_run):
    r = probe_run["results"]
    assert r["write_outside"] == "PermissionError"
    assert not (probe_run["secret_dir"] / "pwned").exists()
    assert r["write_tmp"] == "PermissionError"
    assert r["write_inside"] == "ok:hello"
    assert (probe_run["sandbox"] / "inside.txt").read_text() == "hello"
    assert r["write_home"] == "ok"
    assert r["devnull"] == "ok:0"


@needs_landlock
def test_imports(probe_run):
    r = probe_run["results"]
    assert r["import_numpy"] == "ok:3.0"
    assert r["import_grading"] == "ok:rnn_ref.grading.ch02_rnn"
    assert r["import_reference"] == "ModuleNotFoundError"
    assert r["import_torch"] == "ModuleNotFoundError"
    # The nicer error is only a finder: without it, Landlock still denies the file.
    assert r["import_reference_unguarded"] == "PermissionError"


@needs_abi4
def test_no_tcp(probe_run):
    assert probe_run["results"]["tcp_connect"] == "PermissionError"
    assert probe_run["results"]["tcp_bind"] == "PermissionError"
    assert probe_run["received"]["tcp"] is None


@needs_seccomp
def test_no_udp_nor_unix_socket_outside(probe_run):
    assert probe_run["results"]["udp_send"] == "PermissionError"
    assert probe_run["results"]["unix_connect"] == "PermissionError"
    assert probe_run["received"]["udp"] is None
    assert probe_run["received"]["unix"] is None


@needs_abi6
def test_cannot_signal_outside(probe_run):
    assert probe_run["results"]["signal_grader"] == "PermissionError"
    assert probe_run["results"]["signal_init"] == "PermissionError"


def test_sandbox_variable(probe_run):
    expected = f"landlock-{ABI}" if ABI else "none"
    assert probe_run["results"]["sandbox_var"] == f"ok:{expected}"
    assert probe_run["results"]["cwd"] == f"ok:{probe_run['sandbox'].resolve()}"


def test_environment_scrubbed(probe_run):
    keys = set(json.loads(probe_run["results"]["env"].removeprefix("ok:")))
    assert "RNN_TEST_GRADER_SECRET" not in keys
    allowed = set(sandbox.kernel_env(probe_run["sandbox"])) | {
        "JPY_PARENT_PID",  # jupyter_client's launcher
        "RNN_COURSE_SANDBOX",
        "RNN_COURSE_SANDBOX_FEATURES",  # the kernel
        *("CLICOLOR", "CLICOLOR_FORCE", "FORCE_COLOR", "PAGER", "GIT_PAGER", "TERM"),  # ipykernel
        "PYDEVD_USE_FRAME_EVAL",
    }
    assert keys <= allowed, keys - allowed


def test_resource_limits(probe_run):
    r = probe_run["results"]
    as_, cpu, fsize, core = json.loads(r["rlimits"].removeprefix("ok:"))
    assert as_ == [FAST.memory_bytes] * 2
    assert cpu == [FAST.cpu_s, FAST.cpu_s + 5]
    assert fsize == [FAST.file_bytes] * 2
    assert core == [0, 0]
    assert r["raise_rlimit"] == "ValueError"  # even as root: capabilities are dropped
    assert r["file_too_big"] == "OSError"  # EFBIG


def test_memory_bomb_raises_and_kernel_survives(probe_run):
    cells = probe_run["nb"].cells
    assert cell_text(cells[2]).startswith("MemoryError")
    assert cell_text(cells[3]).startswith("MemoryError")
    assert cell_text(cells[4]) == "alive 45\n"


# --- Timeouts and CPU -------------------------------------------------------------------------
def test_infinite_loop_hits_cell_timeout(tmp_path):
    with pytest.raises(CellTimeoutError):
        run_notebook(["while True:\n    pass"], tmp_path / "sb", Limits(cell_timeout_s=3))


def test_cpu_limit_kills_kernel(tmp_path):
    with pytest.raises(DeadKernelError):
        run_notebook(["while True:\n    pass"], tmp_path / "sb", Limits(cell_timeout_s=30, cpu_s=2))


# --- No process left behind -------------------------------------------------------------------
DAEMONS = """
import os, subprocess
p = subprocess.Popen(["sleep", "1000"], start_new_session=True)
r, w = os.pipe()
pid = os.fork()
if pid == 0:  # a classic daemon: fork, setsid, fork, the middle process exits
    os.setsid()
    grandchild = os.fork()
    if grandchild == 0:
        os.execvp("sleep", ["sleep", "1001"])
    os.write(w, str(grandchild).encode())
    os._exit(0)
os.waitpid(pid, 0)
print(p.pid, int(os.read(r, 32)))
"""

WORKER = """
import json, sys
import psutil
sys.path.insert(0, sys.argv[2])
from test_sandbox import run_notebook, cell_text
from rnn_ref.autograde.sandbox import become_subreaper, kill_descendants
assert become_subreaper()
nb = run_notebook([sys.argv[3]], sys.argv[1])
pids = [int(p) for p in cell_text(nb.cells[0]).split()]
before = [p for p in pids if psutil.pid_exists(p)]
killed = kill_descendants()
print(json.dumps({"pids": pids, "alive_after_kernel_stopped": before, "killed": killed}))
"""


def test_background_processes_are_reaped(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path / "sb"), str(Path(__file__).parent), DAEMONS],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    pids = report["pids"]
    assert len(pids) == 2
    # The kernel is gone but its daemons outlived it, reparented to the worker (subreaper)...
    assert report["alive_after_kernel_stopped"] == pids
    # ...which killed them.
    assert set(pids) <= set(report["killed"])
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# --- The pieces, without a kernel -------------------------------------------------------------
def test_limits_defaults():
    limits = Limits()
    assert (limits.cell_timeout_s, limits.wall_s, limits.cpu_s) == (60, 300, 300)
    assert limits.memory_bytes == 3 * 2**30
    assert (limits.output_bytes, limits.file_bytes) == (1_000_000, 64 * 2**20)


def test_read_allowlist():
    read = sandbox.read_allowlist(("torch",))
    listing = sandbox.list_allowlist(("torch",))
    assert covered(PKG / "__init__.py", read)
    assert covered(PKG / "grading" / "ch02_rnn.py", read)
    for denied in ("numpy", "torch", "autograde"):
        assert not covered(PKG / denied / "__init__.py", read), denied
    assert not covered(SOLUTION, read)
    assert not covered(Path(__file__), read)
    assert str(PKG) in listing  # listable (FileFinder), not readable
    assert not covered("/dev/sda", read) and not covered("/etc/shadow", read)
    np_dir = Path(__import__("numpy").__file__).parent
    assert covered(np_dir / "__init__.py", read)
    site = np_dir.parent
    for entry in site.iterdir():
        name = entry.name
        if name.startswith(("__editable__", "distutils-precedence")):
            assert covered(entry, read), name  # the editable finder must stay readable
        if name.split("-")[0] in ("torch", "torchgen", "functorch"):
            assert not covered(entry, read), name
    assert not covered(site, read) and str(site) in listing
    assert covered(site / "torch" / "__init__.py", sandbox.read_allowlist(()))


def test_kernel_env_is_fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "leak")
    env = sandbox.kernel_env(tmp_path, {"RNN_COURSE_RECORD_DIR": str(tmp_path / "rec")})
    assert "AWS_SECRET_ACCESS_KEY" not in env
    assert env["RNN_COURSE_RECORD_DIR"] == str(tmp_path / "rec")
    for key in ("HOME", "TMPDIR", "IPYTHONDIR", "JUPYTER_RUNTIME_DIR", "MPLCONFIGDIR"):
        assert Path(env[key]).is_relative_to(tmp_path.resolve()), key
    assert env["MPLBACKEND"] == "Agg" and env["OMP_NUM_THREADS"] == "1"


def test_kernel_manager_configuration(tmp_path):
    km = make_kernel_manager(tmp_path / "sb", Limits(memory_bytes=2**30), deny_packages=())
    assert not km.has_kernel
    assert km.transport == "ipc"
    sb = (tmp_path / "sb").resolve()
    assert Path(km.connection_file).is_relative_to(sb) and Path(km.ip).is_relative_to(sb)
    argv = km.kernel_spec.argv
    assert argv[0] == sys.executable and "rnn_ref.autograde.kernel" in argv
    assert argv[argv.index("--memory") + 1] == str(2**30)
    assert argv[argv.index("--deny") + 1] == "" and argv[-2:] == ["-f", "{connection_file}"]


def test_enforced_report():
    report = sandbox.enforced()
    assert report["landlock"] == ABI
    assert report["filesystem"] == (ABI >= 1)
    assert {"rlimits", "subreaper", "network", "signals", "tcp"} <= set(report)


def test_landlock_unavailable_raises(monkeypatch):
    monkeypatch.setattr(landlock, "abi_version", lambda: 0)
    with pytest.raises(OSError, match="Landlock is not available"):
        landlock.restrict([], [])


@needs_landlock
def test_landlock_restrict_directly(tmp_path):
    """File rules get file rights only (no EINVAL), directories hierarchies, the rest is denied."""
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "a.txt").write_text("a")
    (tmp_path / "one.txt").write_text("one")
    (tmp_path / "other.txt").write_text("other")
    (tmp_path / "rw").mkdir()
    script = textwrap.dedent(
        f"""
        import os, sys
        from rnn_ref.autograde import landlock
        base = {str(tmp_path)!r}
        py = [sys.base_prefix, sys.prefix, "/usr", "/lib", "/lib64", "/proc"]
        abi = landlock.restrict(
            [*py, base + "/ro", base + "/one.txt", base + "/missing"], [base + "/rw"]
        )
        def attempt(fn):
            try:
                fn()
                return "ok"
            except OSError as e:
                return type(e).__name__
        print(abi)
        print(attempt(lambda: open(base + "/ro/a.txt").read()))
        print(attempt(lambda: open(base + "/one.txt").read()))
        print(attempt(lambda: open(base + "/other.txt").read()))
        print(attempt(lambda: open(base + "/ro/new.txt", "w")))
        print(attempt(lambda: open(base + "/rw/new.txt", "w").write("x")))
        print(attempt(lambda: os.listdir(base)))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        str(ABI),
        "ok",
        "ok",
        "PermissionError",
        "PermissionError",
        "ok",
        "PermissionError",
    ]


@pytest.mark.skipif(ABI < 4, reason=f"Landlock ABI {ABI} < 4 has no TCP rules")
def test_landlock_alone_denies_tcp():
    """Without seccomp, Landlock (ABI >= 4) still denies TCP connect and bind."""
    script = textwrap.dedent(
        """
        import socket, sys
        from rnn_ref.autograde import landlock
        landlock.restrict([sys.base_prefix, sys.prefix, "/usr", "/lib", "/lib64"], [])
        for what in ("connect", "bind"):
            s = socket.socket()
            try:
                if what == "connect":
                    s.connect(("127.0.0.1", int(sys.argv[1])))
                else:
                    s.bind(("127.0.0.1", 0))
                print(what, "ok")
            except PermissionError:
                print(what, "denied")
        """
    )
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = str(server.getsockname()[1])
        out = subprocess.run([sys.executable, "-c", script, port], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["connect", "denied", "bind", "denied"]


def test_kernel_without_landlock_still_starts_restricted(tmp_path):
    """Where Landlock is unavailable the kernel sets RNN_COURSE_SANDBOX=none, keeps the other
    layers (rlimits, seccomp, subreaper), and prints nothing."""
    secret = tmp_path / "secret.txt"
    secret.write_text("visible")
    script = textwrap.dedent(
        """
        import importlib, os, resource, socket, sys
        from pathlib import Path
        from rnn_ref.autograde import kernel, landlock
        landlock.abi_version = lambda: 0  # as on a kernel without Landlock
        mode = kernel.restrict(Path(sys.argv[1]), 2**31, 100, 2**20, ["torch"])
        print(mode, os.environ["RNN_COURSE_SANDBOX"])
        print(open(sys.argv[2]).read())  # not protected: no Landlock
        print(resource.getrlimit(resource.RLIMIT_AS)[0] == 2**31)
        try:
            socket.socket()
            print("tcp-allowed")
        except PermissionError:
            print("tcp-denied")
        try:
            importlib.import_module("torch")
        except ModuleNotFoundError:
            print("torch-hidden")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(secret)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    network = "tcp-denied" if ENFORCED["network"] else "tcp-allowed"
    assert out.stdout.split() == ["none", "none", "visible", "True", network, "torch-hidden"]
