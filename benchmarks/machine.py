"""What machine and software a benchmark ran on, for the header of its report."""
from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Sequence

import tfmeta


def cpu_model() -> str:
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
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_bytes": memory,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    info.update({p.replace("-", "_"): _version(p) for p in packages})
    info["tfmeta"] = tfmeta.__version__
    return info


def gpus_seen() -> int:
    import tensorflow as tf
    return len(tf.config.list_physical_devices("GPU"))


def machine_of(sections: dict) -> tuple:
    """(machine, GPUs TensorFlow saw) of a report's dataset sections."""
    first = next(iter(sections.values()))
    return first["machine"], max(sec["gpus_seen_by_tensorflow"] for sec in sections.values())


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


def timing_report(benchmark: str, argv: Sequence[str], packages: Sequence[str],
                  **fields) -> dict:
    """What a timing benchmark's report starts with: its name, command (`python -m
    benchmarks.<benchmark> argv...`) and date, the machine and `packages`' versions
    (`describe`), the GPUs TensorFlow sees, this process's niceness and the load average
    before; then `fields`. `finish` adds the load average after."""
    import datetime
    import shlex

    import tensorflow as tf
    return {"benchmark": benchmark,
            "command": shlex.join(["python", "-m", f"benchmarks.{benchmark}", *argv]),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "machine": describe(packages),
            "gpus_seen_by_tensorflow": len(tf.config.list_physical_devices("GPU")),
            "niceness": os.nice(0), "loadavg_before": list(os.getloadavg()), **fields}


def timing_header(report: dict, title: str, interleaved: str) -> list:
    """The first lines of a `timing_report`'s markdown: the title (marked as a smoke test
    when report["quick"]), date, command, machine and versions, and the shared-machine
    line saying that `interleaved` (e.g. "tensor, list, tensor, ...") makes the ratios
    the result."""
    title += " (quick: a smoke test, not evidence)" if report.get("quick") else ""
    load = report["loadavg_before"][0], report["loadavg_after"][0]
    return [f"# {title}", "",
            f"- Date: {report['date']}",
            f"- Command: `{report['command']}` (from the repository root)",
            *header_lines(report["machine"], report["gpus_seen_by_tensorflow"]),
            f"- **Shared machine.** Niceness {report['niceness']}; 1-minute load average "
            f"{load[0]:.2f} before, {load[1]:.2f} after ({report['total_seconds'] / 60:.1f} "
            f"min in all) on {report['machine']['usable_cpus']} cores. Each comparison is "
            f"interleaved ({interleaved}), so both sides see the same contention: the "
            "ratios are the result, not the absolute times."]


def write_results(results_dir: str, prefix: str, data: dict, markdown: str) -> tuple:
    """RESULTS_DIR/PREFIX.json (data) and PREFIX.md (markdown), each replaced whole
    (never half-written); returns (md_path, json_path)."""
    from benchmarks.reports import write_json, write_text
    os.makedirs(results_dir, exist_ok=True)
    md_path = os.path.join(results_dir, f"{prefix}.md")
    json_path = os.path.join(results_dir, f"{prefix}.json")
    write_text(md_path, markdown)
    write_json(json_path, data)
    return md_path, json_path


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
