"""Run a merged notebook in a sandboxed kernel, one cell at a time, and collect what each
test cell's calls to student code returned (the records of ``rnn_ref.grading._record``)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from rnn_ref.grading import _record

from .sandbox import Limits, kill_descendants, make_kernel_manager


@dataclass
class CellRun:
    status: str = "not run"  # ok, error, timeout, not run
    records: list[dict] = field(default_factory=list)
    error: str = ""  # the kernel's error name and message, if any


@dataclass
class Run:
    cells: dict[int, CellRun]
    stopped: str = ""  # why the notebook did not run to the end, in words
    truncated: bool = False  # outputs went over the cap


class _CappedClient(NotebookClient):
    """An nbclient that drops outputs beyond a byte budget (a student can print gigabytes)."""

    def __init__(self, nb, budget: int, **kw):
        super().__init__(nb, **kw)
        self.budget = budget
        self.truncated = False
        self.timed_out = False

    async def _async_handle_timeout(self, timeout, cell=None):
        self.timed_out = True  # nbclient interrupts the kernel and answers with error_on_timeout
        return await super()._async_handle_timeout(timeout, cell)

    def responsive(self, seconds: int = 5) -> bool:
        """Whether the kernel answers a trivial request (after an interrupt it may not)."""
        probe = nbformat.v4.new_code_cell("pass")
        saved, self.timeout, self.timed_out = self.timeout, seconds, False
        try:
            self.execute_cell(probe, 0, store_history=False)
        except Exception:
            return False
        finally:
            self.timeout = saved
        return not self.timed_out

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + len(str(content.get("data", "")))
        size += len(str(content.get("traceback", "")))
        if self.budget - size < 0:
            if not self.truncated:
                self.truncated = True
                outs.append(
                    nbformat.v4.new_output(
                        "stream",
                        name="stdout",
                        text="\n[output truncated: more was printed than the grader keeps]\n",
                    )
                )
            return None
        self.budget -= size
        return super().output(outs, msg, display_id, cell_index)


def _new_records(folder: Path, seen: set[str]) -> list[str]:
    names = sorted(p.name for p in folder.glob("*.json") if p.name not in seen)
    seen.update(names)
    return names


def run(nb, sandbox: Path, limits: Limits, deny_packages, test_cells: set[int]) -> Run:
    """Execute ``nb`` (modified in place: outputs) in a sandbox rooted at ``sandbox``.

    ``test_cells`` are the indices whose records are collected. The kernel and everything it
    started are killed at the end, whatever happened.
    """
    records_dir = sandbox / ".records"
    records_dir.mkdir()
    km = make_kernel_manager(
        sandbox, limits, deny_packages, env_extra={_record.RECORD_DIR_ENV: str(records_dir)}
    )
    client = _CappedClient(
        nb,
        limits.output_bytes,
        km=km,
        timeout=limits.cell_timeout_s,
        allow_errors=True,
        interrupt_on_timeout=True,
        record_timing=False,
        error_on_timeout={"ename": "TimeLimit", "evalue": "", "traceback": []},
        startup_timeout=120,
        kernel_name="python3",
    )
    cells = {i: CellRun() for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    result = Run(cells)
    seen: set[str] = set()
    deadline = time.monotonic() + limits.wall_s
    try:
        with client.setup_kernel():
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    result.stopped = f"the notebook ran past its {limits.wall_s} s time limit"
                    break
                client.timeout = int(max(1, min(limits.cell_timeout_s, left)))
                _new_records(records_dir, seen)  # whatever earlier cells left behind
                try:
                    client.timed_out = False
                    client.execute_cell(cell, i)
                    errors = [o for o in cell.outputs if o.output_type == "error"]
                    cells[i].status = "error" if errors else "ok"
                    if errors:
                        cells[i].error = f"{errors[0].ename}: {errors[0].evalue}"[:500]
                    if client.timed_out:
                        cells[i].status = "timeout"
                        cells[i].error = f"the cell ran past its {client.timeout} s time limit"
                        cell.outputs.append(
                            nbformat.v4.new_output(
                                "error", ename="TimeLimit", evalue=cells[i].error, traceback=[]
                            )
                        )
                        if not client.responsive():
                            result.stopped = (
                                f"cell {i} ran past its time limit and the kernel "
                                "did not respond to an interrupt"
                            )
                            break
                except DeadKernelError:
                    cells[i].status = "error"
                    cells[i].error = "the kernel died (a crash, os._exit, or out of memory)"
                    result.stopped = f"the kernel died while running cell {i}"
                    break
                finally:
                    if i in test_cells:
                        cells[i].records = _record.read(
                            records_dir, _new_records(records_dir, seen)
                        )
    except DeadKernelError:
        result.stopped = result.stopped or "the kernel died"
    except Exception as e:  # a kernel that never started, a broken sandbox
        result.stopped = (
            result.stopped or f"the notebook could not be run ({type(e).__name__}: {e})"
        )
    finally:
        # Close everything this run opened: a worker grades many notebooks in one process.
        if getattr(client, "kc", None) is not None:
            with contextlib.suppress(Exception):
                client.kc.stop_channels()
        with contextlib.suppress(Exception):
            if km.has_kernel:
                km.shutdown_kernel(now=True)
            else:
                km.cleanup_resources()
        with contextlib.suppress(Exception):
            if not km.context.closed:
                km.context.destroy(linger=0)
        kill_descendants()
    result.truncated = client.truncated
    return result
