"""Scale: the graph through the serving snapshots at 1M and 10M simulated events, per asset group.

    .venv/bin/python benchmarks/scale.py                        # 1M then 10M events, one run each
    .venv/bin/python benchmarks/scale.py --sizes 1m --repeats 3 # median of three runs at 1M
    .venv/bin/python benchmarks/scale.py --executor multiprocess --max-concurrent 2
    .venv/bin/python benchmarks/scale.py --executor captured    # the old `make run` (outputs kept in memory)

Each run gets a fresh home under --root (deleted afterwards unless --keep) and runs in a child process:
the assets upstream of the serving snapshots (what `make serve` needs) with their checks; the
experiments, reports and search groups are left out (--scope features: only ingest, staging, features). While it runs, this process samples
the resident memory (RSS) and CPU time of the child's whole process tree (Linux /proc) every 0.2 s;
Dagster's step events give each step's start and end. A group's wall time is the sum of its steps',
its CPU time the tree's CPU used while they ran, its peak RSS the tree's largest RSS while they ran.
"orchestration" is what no step covers: imports, building the definitions, Dagster's own bookkeeping.
The machine, the load average before and after, and the child's total CPU time are printed with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_CHECKOUT))

# Simulated users per size: the games preset over 30 days yields about 106 events a user.
SIZES = {"100k": 1_000, "300k": 3_000, "1m": 10_000, "3m": 30_000, "10m": 100_000}
GROUP_ORDER = ("ingest", "streaming", "staging", "features", "training", "models", "evaluation", "serving")
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- the child: one run of the graph


# What a run builds: the serving snapshots and all they need, or only the raw parts (ingest, staging and
# the feature tables: no model).
SCOPES = {"snapshots": "serving", "features": "features"}


def selection(defs, scope: str):
    """The scope's group and everything upstream of it (asset keys)."""
    import dagster as dg

    chosen = dg.AssetSelection.groups(SCOPES[scope]).upstream().required_multi_asset_neighbors()
    return chosen.resolve(defs.resolve_asset_graph())


def step_groups(defs) -> dict[str, str]:
    """Each step (op) of the job -> the asset group of what it builds or checks."""
    graph = defs.resolve_asset_graph()
    groups: dict[str, str] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.assets_def.is_executable:
            groups.setdefault(node.assets_def.node_def.name, node.group_name or "default")
    # A check's step is named after the asset it checks and the check; it counts in that asset's group.
    for check in graph.asset_check_keys:
        group = graph.get(check.asset_key).group_name or "default"
        groups.setdefault(f"{check.asset_key.to_python_identifier()}_{check.name}", group)
        groups.setdefault(check.name, group)
    return groups


def child(spec: dict) -> None:
    from recs_assets.cli import prepare_home, quiet_libraries, run_everything
    from recs_assets.definitions import build_definitions
    from recs_assets.settings import Settings

    quiet_libraries()
    settings = Settings.from_env()
    prepare_home(settings)
    defs = build_definitions(settings)
    keys = selection(defs, spec["scope"])
    started = time.time()
    if spec["executor"] == "captured":
        result = _captured_run(settings, defs, keys)
    else:
        result, _ = run_everything(settings, asset_selection=keys, executor=spec["executor"],
                                   max_concurrent=spec["max_concurrent"])
    finished = time.time()
    groups = step_groups(defs)
    steps: dict[str, dict] = {}
    import dagster as dg

    for entry in dg.DagsterInstance.get().all_logs(result.run_id):
        event = entry.dagster_event
        kind = event.event_type_value if event else None
        if not entry.step_key or kind not in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
            continue
        step = steps.setdefault(entry.step_key, {"group": _group(entry.step_key, groups)})
        step["start" if kind == "STEP_START" else "end"] = entry.timestamp
        if kind == "STEP_FAILURE":
            step["failed"] = True
    def metadata(asset: str, key: str):
        return next((m.metadata[key].value for e in result.get_asset_materialization_events()
                     for m in [e.event_specific_data.materialization]
                     if m.asset_key.to_user_string() == asset and key in m.metadata), None)

    Path(spec["out"]).write_text(json.dumps({
        "success": result.success, "run_id": result.run_id, "started": started, "finished": finished,
        # The champion decides what champion_refit and the snapshot cost: the ranker's whole pipeline
        # (its lessons and every generator again) or a single model.
        "steps": steps, "raw_rows": metadata("raw_events", "rows"), "champion": metadata("champion_model", "champion"),
    }))


def _group(step_key: str, groups: dict[str, str]) -> str:
    # Check steps are named after their op; a few Dagster adds (e.g. for a multi-asset) carry a suffix.
    return groups.get(step_key) or next((g for op, g in groups.items() if step_key.startswith(op)), "other")


def _captured_run(settings, defs, keys):
    """The run as `make run` made it before: job.execute_in_process, which keeps every step's output."""
    import dagster as dg

    from recs_assets.definitions import EVERYTHING_JOB

    job = defs.resolve_job_def(EVERYTHING_JOB)
    raw = defs.resolve_assets_def("raw_events")
    tags = {}
    if raw.partitions_def is not None:
        days = raw.partitions_def.get_partition_keys()
        tags = {"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
    return job.execute_in_process(
        instance=dg.DagsterInstance.get(), tags=tags, asset_selection=list(keys), raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )


# ---------------------------------------------------------------- the parent: sampling and the table


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds, RSS bytes) of one process, None when it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK, rss_pages * _PAGE


class Sampler(threading.Thread):
    """Samples (time, tree RSS, tree CPU seconds so far) of a process tree until stopped."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.samples = pid, interval, []
        self._cpu_seen: dict[int, float] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = 0
            for pid in _tree(self.pid):
                usage = _usage(pid)
                if usage is not None:
                    self._cpu_seen[pid] = usage[0]
                    rss += usage[1]
            # Processes that ended keep their last CPU figure: the total stays monotone.
            self.samples.append((time.time(), rss, sum(self._cpu_seen.values())))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def one_run(size: str, executor: str, max_concurrent: int, scope: str, root: Path, keep: bool) -> dict:
    home = root / f"{size}-{executor}-{time.strftime('%H%M%S')}"
    home.mkdir(parents=True)
    out = home / "scale_result.json"
    env = {**os.environ, "RECS_HOME": str(home / "home"), "RECS_SIM_USERS": str(SIZES[size])}
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    spec = {"executor": executor, "max_concurrent": max_concurrent, "scope": scope, "out": str(out)}
    load_before = os.getloadavg()
    started = time.time()
    process = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)], env=env, cwd=home,
                               stdout=subprocess.DEVNULL, stderr=open(home / "stderr.log", "w"))
    sampler = Sampler(process.pid)
    sampler.start()
    _, status, rusage = os.wait4(process.pid, 0)
    sampler.stop()
    wall = time.time() - started
    if status != 0 or not out.exists():
        tail = (home / "stderr.log").read_text()[-3000:]
        raise SystemExit(f"the {size} run failed (exit status {status}); its stderr ends:\n{tail}")
    run = json.loads(out.read_text())
    run.update(size=size, executor=executor, scope=scope, wall=wall, load_before=load_before, load_after=os.getloadavg(),
               cpu=rusage.ru_utime + rusage.ru_stime, max_process_rss=rusage.ru_maxrss * 1024,
               peak_rss=max((s[1] for s in sampler.samples), default=0), groups=_by_group(run, sampler.samples, wall))
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
    return run


def _by_group(run: dict, samples: list[tuple[float, int, float]], wall: float) -> dict[str, dict]:
    groups: dict[str, dict] = {}
    covered = 0.0
    for step in run["steps"].values():
        if "start" not in step or "end" not in step:
            continue
        inside = [s for s in samples if step["start"] <= s[0] <= step["end"]]
        step["wall"] = step["end"] - step["start"]
        step["cpu"] = inside[-1][2] - inside[0][2] if inside else 0.0
        step["peak_rss"] = max((s[1] for s in inside), default=0)
        group = groups.setdefault(step["group"], {"wall": 0.0, "cpu": 0.0, "peak_rss": 0, "steps": 0})
        group["wall"] += step["wall"]
        group["steps"] += 1
        covered += step["wall"]
        group["cpu"] += step["cpu"]
        group["peak_rss"] = max(group["peak_rss"], step["peak_rss"])
    total_cpu = samples[-1][2] if samples else 0.0
    groups["orchestration"] = {
        "wall": wall - covered, "steps": 0, "peak_rss": 0,
        "cpu": max(0.0, total_cpu - sum(g["cpu"] for g in groups.values())),
    }
    return groups


def table(runs: list[dict]) -> str:
    """Median per size and group over the runs: wall s, CPU s, peak RSS GiB."""
    sizes = list(dict.fromkeys(r["size"] for r in runs))
    names = [g for g in (*GROUP_ORDER, "other", "orchestration") if any(g in r["groups"] for r in runs)]
    header = f"{'group':<14}" + "".join(f"{s + ' wall s':>12}{'cpu s':>8}{'peak GiB':>9}" for s in sizes)
    lines = [header, "-" * len(header)]

    def med(size, pick):
        values = [pick(r) for r in runs if r["size"] == size]
        return statistics.median(values) if values else float("nan")

    for name in names:
        cells = ""
        for size in sizes:
            get = lambda r, k: r["groups"].get(name, {}).get(k, 0)  # noqa: E731
            cells += f"{med(size, lambda r: get(r, 'wall')):>12.1f}{med(size, lambda r: get(r, 'cpu')):>8.1f}"
            cells += f"{med(size, lambda r: get(r, 'peak_rss')) / 2**30:>9.2f}"
        lines.append(f"{name:<14}{cells}")
    total = "".join(
        f"{med(s, lambda r: r['wall']):>12.1f}{med(s, lambda r: r['cpu']):>8.1f}{med(s, lambda r: r['peak_rss']) / 2**30:>9.2f}"
        for s in sizes)
    lines += ["-" * len(header), f"{'whole run':<14}{total}"]
    for size in sizes:
        mine = [r for r in runs if r["size"] == size]
        events = mine[0]["raw_rows"]
        loads = ", ".join(f"{r['load_before'][0]:.1f}->{r['load_after'][0]:.1f}" for r in mine)
        lines.append(f"{size}: {events:,} raw events, {len(mine)} run(s), scope {mine[0]['scope']}, executor {mine[0]['executor']}, "
                     f"largest single process {max(r['max_process_rss'] for r in mine) / 2**30:.2f} GiB, "
                     f"1-min load average before->after {loads}")
        champions = ", ".join(str(r.get("champion")) for r in mine)
        if any(r.get("champion") for r in mine):
            lines.append(f"{size}: champion served (what champion_refit fits again) {champions}")
    if len(sizes) >= 2:
        first, last = sizes[0], sizes[-1]
        scale = [r["raw_rows"] for r in runs if r["size"] == last][0] / [r["raw_rows"] for r in runs if r["size"] == first][0]
        growth = med(last, lambda r: r["wall"]) / med(first, lambda r: r["wall"])
        lines.append(f"{first} -> {last}: {scale:.1f}x the events, {growth:.1f}x the wall time "
                     f"({'at most linear' if growth <= scale else 'worse than linear'})")
    return "\n".join(lines)


def heaviest_steps(runs: list[dict], n: int) -> str:
    lines = []
    for size in dict.fromkeys(r["size"] for r in runs):
        run = [r for r in runs if r["size"] == size][-1]
        timed = sorted((s for s in run["steps"].items() if "wall" in s[1]), key=lambda s: -s[1]["wall"])[:n]
        lines += ["", f"{size}: the {len(timed)} slowest steps (wall s, CPU s, peak RSS GiB of the process tree)"]
        lines += [f"  {key:<52}{s['group']:<12}{s['wall']:>8.1f}{s['cpu']:>8.1f}{s['peak_rss'] / 2**30:>8.2f}" for key, s in timed]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from benchmarks.machine import describe

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", nargs="+", default=["1m", "10m"], choices=list(SIZES))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--executor", default="in_process", choices=["in_process", "multiprocess", "captured"])
    parser.add_argument("--max-concurrent", type=int, default=1)
    parser.add_argument("--scope", default="snapshots", choices=list(SCOPES),
                        help="snapshots: through the serving snapshots; features: ingest, staging and features only")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "recs_scale")
    parser.add_argument("--keep", action="store_true", help="keep each run's home (they are large)")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    parser.add_argument("--steps", type=int, default=0, help="also list this many of the slowest steps of each size's last run")
    args = parser.parse_args(argv)
    print(describe())
    runs = []
    for size in args.sizes:
        for _ in range(args.repeats):
            run = one_run(size, args.executor, args.max_concurrent, args.scope, args.root, args.keep)
            print(f"  {size}: {run['wall']:.1f} s wall, {run['cpu']:.1f} s CPU, peak RSS {run['peak_rss'] / 2**30:.2f} GiB, "
                  f"champion {run.get('champion')}"
                  f"{'' if run['success'] else '  (A STEP FAILED)'}", flush=True)
            runs.append(run)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    print(table(runs))
    if args.steps:
        print(heaviest_steps(runs, args.steps))
    return 0 if all(r["success"] for r in runs) else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        sys.exit(main())
