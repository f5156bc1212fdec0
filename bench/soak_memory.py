"""What the soak measures of a process: RSS, where its heap is (pymalloc, glibc malloc), its TCP sockets, the
gc-tracked objects by type, and tracemalloc's growth between two snapshots (bench/bench_soak.py)."""

from __future__ import annotations

import gc
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.bench_live_requests import open_sockets

ROOT = Path(__file__).resolve().parents[1]
TOP = 15  # tracemalloc lines and object types shown


def rss_mb() -> float:
    """Resident memory of this process in MB (psutil when installed, else /proc)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def heap_mb(trim: bool = False) -> dict:
    """Where the process's heap is, in MB: pymalloc's arenas (Python's small objects) and the bytes in use in
    them, and glibc malloc's heap (everything larger: numpy and pandas buffers, sqlite, the C libraries) split
    into bytes in use and free bytes malloc keeps (fragmentation; RSS counts them until given back). `trim`:
    malloc_trim(0) first, giving the free pages back to the system."""
    import ctypes
    import os
    import re

    out = {}
    try:
        class MallInfo2(ctypes.Structure):
            _fields_ = [(f, ctypes.c_size_t) for f in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                       "fsmblks", "uordblks", "fordblks", "keepcost")]

        libc = ctypes.CDLL("libc.so.6")
        if trim:
            libc.malloc_trim(0)
        libc.mallinfo2.restype = MallInfo2
        m = libc.mallinfo2()
        out["malloc_used_mb"] = (m.uordblks + m.hblkhd) / 2**20
        out["malloc_free_mb"] = m.fordblks / 2**20
    except (OSError, AttributeError):  # not glibc (>= 2.33)
        pass
    with tempfile.TemporaryFile() as f:  # sys._debugmallocstats writes to the C stderr
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    arenas = re.search(r"^(\d+) arenas \* (\d+) bytes/arena", text, re.M)
    used = re.search(r"^# bytes in allocated blocks\s*=\s*([\d,]+)", text, re.M)
    if arenas and used:
        out["pymalloc_mb"] = int(arenas[1]) * int(arenas[2]) / 2**20
        out["pymalloc_used_mb"] = int(used[1].replace(",", "")) / 2**20
    return out


def tcp_sockets(server_port: int) -> tuple[int, int]:
    """(all TCP sockets of this process except listening ones, the bot's client sockets to the fake)."""
    try:
        import psutil

        conns = [c for c in psutil.Process().net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN]
        return len(conns), sum(1 for c in conns if c.raddr and c.raddr.port == server_port)
    except ImportError:
        total = open_sockets()  # the /proc reading of bench_live_requests: client (and in-process server) ends
        return total, total


def short_path(filename: str) -> str:
    """A traceback file name without the venv's or the repository's prefix."""
    for marker in ("site-packages/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def object_counts() -> Counter:
    """gc-tracked objects by type (module.qualname)."""
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


def traced_growth(first, last, frames: int) -> list[str]:
    import tracemalloc

    keep = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
            tracemalloc.Filter(False, "<unknown>"), tracemalloc.Filter(False, __file__),
            tracemalloc.Filter(False, str(Path(__file__).with_name("bench_soak.py")))]
    first, last = first.filter_traces(keep), last.filter_traces(keep)
    total = sum(s.size for s in last.statistics("filename")) - sum(s.size for s in first.statistics("filename"))
    out = [f"traced memory grew {total / 2**20:+.2f} MB; top {TOP} growths by filename:lineno"]
    for s in last.compare_to(first, "lineno")[:TOP]:
        fr = s.traceback[0]
        out.append(f"  {s.size_diff / 2**10:+10.1f} KiB {s.count_diff:+8d} blocks  "
                   f"{short_path(fr.filename)}:{fr.lineno}")
    if frames > 1:
        out.append("top 5 by traceback (innermost frame last)")
        for s in last.compare_to(first, "traceback")[:5]:
            out.append(f"  {s.size_diff / 2**10:+10.1f} KiB {s.count_diff:+8d} blocks")
            out.extend(f"      {short_path(fr.filename)}:{fr.lineno}" for fr in s.traceback)
    return out


def growth_report(first, last, objects_first: Counter, objects_last: Counter, frames: int) -> list[str]:
    """tracemalloc's top growths between two snapshots (when traced), and the object types whose count grew most."""
    out = [] if first is None else traced_growth(first, last, frames)
    out.append(f"gc-tracked objects: {sum(objects_first.values())} -> {sum(objects_last.values())}; top {TOP} "
               f"growths by type")
    diff = Counter({k: objects_last[k] - objects_first.get(k, 0) for k in objects_last})
    for name, d in diff.most_common(TOP):
        if d <= 0:
            break
        out.append(f"  {d:+8d}  {name} ({objects_first.get(name, 0)} -> {objects_last[name]})")
    return out
