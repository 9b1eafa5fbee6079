"""What machine and software a benchmark ran on, for the header of its report."""
from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Sequence

import tfmeta


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _version(package: str):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe(packages: Sequence[str]) -> dict:
    """CPU, cores, memory, platform, and the versions of `packages` (keys with '-'
    turned into '_', e.g. 'tf-keras' -> 'tf_keras')."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = None
    info = {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_bytes": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    info.update({p.replace("-", "_"): _version(p) for p in packages})
    info["tfmeta"] = tfmeta.__version__
    return info


def run_measured(cmd: Sequence[str], cwd: str, log) -> dict:
    """Runs `cmd` (output appended to the open file `log`) and measures it: its exit
    code, wall seconds, the child's own CPU seconds and peak RSS, the load after."""
    import subprocess
    import time
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    started = time.perf_counter()
    process = subprocess.Popen(list(cmd), cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                               env=env)
    # wait4 rather than wait: it also gives this child's own CPU time and peak RSS.
    _, status, usage = os.wait4(process.pid, 0)
    return {"returncode": os.waitstatus_to_exitcode(status),
            "process_seconds": time.perf_counter() - started,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "max_rss_bytes": usage.ru_maxrss * 1024,
            "loadavg_after": list(os.getloadavg())}


# Package keys of `describe` and how reports name them, in report order.
VERSION_LABELS = (("tensorflow", "TensorFlow"), ("tf_keras", "tf-keras"),
                  ("tensorflow_gnn", "TF-GNN"), ("apache_beam", "Apache Beam"),
                  ("pandas", "pandas"), ("numpy", "NumPy"), ("matplotlib", "matplotlib"),
                  ("tfmeta", "tfmeta"))


def header_lines(m: dict, gpus: int) -> list:
    """A report's "- Machine: ..." and "- Versions: ..." lines from `describe()`."""
    memory = f", {m['memory_bytes'] / (1 << 30):.0f} GiB RAM" if m.get("memory_bytes") else ""
    gpu = "no GPU" if not gpus else f"{gpus} GPU(s)"
    versions = "".join(f", {label} {m[key]}" for key, label in VERSION_LABELS if key in m)
    return [f"- Machine: {m['cpu_model']}, {m['usable_cpus']} cores usable "
            f"({m['logical_cpus']} logical){memory}, {gpu} (TensorFlow sees {gpus}); "
            f"{m['platform']}",
            f"- Versions: Python {m['python']}{versions}"]


def write_results(results_dir: str, prefix: str, data: dict, markdown: str) -> tuple:
    """RESULTS_DIR/PREFIX.json (data) and PREFIX.md (markdown), each replaced whole
    (never half-written); returns (md_path, json_path)."""
    import json
    os.makedirs(results_dir, exist_ok=True)
    paths = os.path.join(results_dir, f"{prefix}.md"), os.path.join(results_dir, f"{prefix}.json")
    for path, text in zip(paths, (markdown, json.dumps(data, indent=2) + "\n")):
        with open(f"{path}.tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(f"{path}.tmp", path)
    return paths


def finish(results_dir: str, prefix: str, report: dict, render, started: float) -> None:
    """Stamps the report with the load average after and the total seconds since
    `started` (perf_counter), writes it (`write_results`, markdown = render(report)) and
    says where."""
    import sys
    import time
    report["loadavg_after"] = list(os.getloadavg())
    report["total_seconds"] = time.perf_counter() - started
    md_path, json_path = write_results(results_dir, prefix, report, render(report))
    print(f"wrote {md_path} and {json_path} ({report['total_seconds'] / 60:.1f} min)",
          file=sys.stderr)


class PeakRss:
    """Samples the RSS of this process plus its children in a background thread:
    `with PeakRss() as rss: ...` then rss.peak, rss.baseline (bytes), rss.samples."""

    def __init__(self, interval: float = 0.05):
        import threading

        import psutil
        self.interval = interval
        self.process = psutil.Process()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def rss(self) -> int:
        import psutil
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass  # it ended between listing and reading
        return total

    def _sample(self) -> None:
        self.peak = max(self.peak, self.rss())
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self.baseline = self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        return False


def cpu_seconds(process) -> float:
    """CPU seconds of a psutil.Process and its waited-for children."""
    t = process.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def interleaved(run, kinds: Sequence[str], repeats: int, desc: str) -> dict:
    """`repeats` rounds of run(kind) for every kind in turn (A, B, A, B, ...: each sees
    the same contention), after warming up is the caller's job. run(kind) -> (result,
    wall s, CPU s). Returns {"seconds": {kind: {"wall": [...], "cpu": [...]}},
    "median_seconds": {kind: {"wall", "cpu"}}, "results": {kind: [result, ...]}}."""
    import sys

    import numpy as np
    from tqdm.auto import tqdm
    seconds = {kind: {"wall": [], "cpu": []} for kind in kinds}
    results = {kind: [] for kind in kinds}
    for _ in tqdm(range(repeats), desc=desc, file=sys.stderr):
        for kind in kinds:
            result, wall, cpu = run(kind)
            seconds[kind]["wall"].append(wall)
            seconds[kind]["cpu"].append(cpu)
            results[kind].append(result)
    median = {k: {c: float(np.median(v)) for c, v in t.items()} for k, t in seconds.items()}
    return {"seconds": seconds, "median_seconds": median, "results": results}


def ratio(median_seconds: dict, slower: str, faster: str) -> dict:
    """{"wall", "cpu"}: median seconds of `slower` over those of `faster`."""
    return {c: median_seconds[slower][c] / median_seconds[faster][c] for c in ("wall", "cpu")}
