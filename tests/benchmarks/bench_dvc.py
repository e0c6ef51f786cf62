"""DVC: what envguard adds to `dvc push`, and what `envguard data check` costs on a large
DVC-tracked file. Both against the plain tool in the same run, on moto's S3 server (127.0.0.1).

- `dvc push` of 1,000 small files with the guard on (push, then envguard's sync and tag sweep
  in the same process) vs `dvc push` of the same files with ENVGUARD_DISABLE=1, each to a fresh
  bucket. Goal: at most 1.3x.
- `envguard data check` of a DVC-tracked 1 GB file vs `md5sum` of it. The goal (under 5% of
  md5sum's time) is about what the file's size adds, i.e. that the check reuses DVC's recorded
  digest instead of reading the file: envguard's start-up does not depend on the file at all
  (~0.25 s warm on a 2-core machine: the interpreter, click, plugin discovery through
  importlib.metadata, the plugins, SQLite; the policy comes from the validated-policy cache) and
  does not fit in 5% of md5sum's time whatever the check does. It is measured three ways:
  1. the gate alone (`check_data_use`, as the command calls it, recording included) in one
     process, on the 1 GB file and on a one-line DVC-tracked file alternately; it fails if the
     gate would hash the file. The goal is judged on this increment: it is the only part of the
     command whose input differs, and it is free of start-up noise;
  2. the whole command on both files and on a second one-line file, in rotating order: the
     median paired difference, with the same difference between the two one-line files beside
     it (the noise floor of that run: two commands doing identical work);
  3. the whole command's time, reported beside md5sum's; and once more with an empty cache
     folder (XDG_CACHE_HOME: no policy cache entry and no plugin index), as the first command
     after a policy change or an install runs: it validates the policy (pydantic), finds the
     plugins (importlib.metadata) and writes both.

Why the earlier figure (+0.22 s for the 1 GB file) was not envguard's: the two commands make the
same Python calls and the same system calls (cProfile, strace; the 1 GB file is only stat'ed),
and re-measured with (2) the increment is -0.19 to +0.22 s against a noise floor of -0.40 to
+0.08 s. The old loop always ran the 1 GB check first in each pair, and it ran ~30 s after the
1 GB file and DVC's cache copy of it were written: the kernel writes those 2 GB of dirty pages
back then (vm.dirty_expire_centisecs = 3000), during the first timed runs. Hence the rotation,
the os.sync() before timing, the CPU times (less sensitive to other processes than wall time)
and the noise floor.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

NAME = "dvc"
FILES = 1000
BIG = 1 << 30
RUNS = 5
PUSH_ROUNDS = 3
CHECK_ROUNDS = 9
GATE_ROUNDS = 30

BIN = Path(sys.executable).parent
POLICY = """\
version = 1
default_env = "train"
[environments.train]
tier = "non-prod"
dvc_remotes = ["dev-data"]
[environments.prod]
tier = "prod"
"""


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _repo(folder: Path, env: dict[str, str], endpoint: str, bucket: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "envguard.toml").write_text(POLICY)
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=folder, check=True, env=env)
    with (folder / ".dvc" / "config").open("a") as config:
        config.write("[core]\n    remote = dev-data\n['remote \"dev-data\"']\n")
        config.write(f"    url = s3://{bucket}/store\n    endpointurl = {endpoint}\n")
    return folder


def _push(root: Path, env: dict[str, str], moto: Any) -> dict[str, list[float]]:
    """Interleaved: each round pushes a fresh copy of the same repository with the guard off and
    on (in alternating order), each to a fresh bucket, so both see the same machine load."""
    dvc = str(BIN / "dvc")
    template = _repo(root / "template", env, moto.url, "bench-template")
    data = template / "data"
    data.mkdir()
    for i in range(FILES):
        (data / f"f{i:04d}.csv").write_text(f"id,value\n{i},{i * i}\n")
    subprocess.run([dvc, "add", "-q", "data"], cwd=template, env=env, check=True)
    times: dict[str, list[float]] = {"plain": [], "envguard": []}
    for n in range(PUSH_ROUNDS):
        order = [("plain", {"ENVGUARD_DISABLE": "1"}), ("envguard", {})]
        for label, extra in order if n % 2 == 0 else order[::-1]:
            bucket = f"bench-{label}-{n}"
            moto.client().create_bucket(Bucket=bucket)
            repo = root / f"{label}-{n}"
            shutil.copytree(template, repo, symlinks=True)
            config = repo / ".dvc" / "config"
            config.write_text(config.read_text().replace("bench-template", bucket))
            times[label].append(_run([dvc, "push", "-q"], repo, {**env, **extra}))
            pages = moto.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
            keys = sum(page.get("KeyCount", 0) for page in pages)
            assert keys == FILES + 1, f"{label} push stored {keys} objects"
            if label == "envguard":
                tags = moto.client().get_object_tagging(Bucket=bucket, Key=_any_key(moto, bucket))
                assert tags["TagSet"], "the guarded push did not tag"
            shutil.rmtree(repo, ignore_errors=True)
    return times


def _any_key(moto: Any, bucket: str) -> str:
    return str(moto.client().list_objects_v2(Bucket=bucket, MaxKeys=1)["Contents"][0]["Key"])


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and the child's CPU time (user + system: far less sensitive to other
    processes on a shared machine than the wall time)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime


# Run in the repository by a fresh interpreter: envguard's gate, as `envguard data check` calls
# it, on each file in turn, once loaded (what follows start-up is all that depends on the file).
# A check that would hash the file fails: the 1 GB file's digest must come from DVC's record.
_GATE = """
import json, statistics, sys, time
from envguard.gate import check_data_use
from envguard.runtime import current

def hashed():
    raise SystemExit("the gate hashed the file instead of reusing DVC's digest")

rounds, names = int(sys.argv[1]), sys.argv[2:]
runtime = current()
for name in names:
    check_data_use(runtime, name, None, hash_file=hashed)
samples = {name: [] for name in names}
for n in range(rounds):
    for name in names if n % 2 == 0 else names[::-1]:
        start = time.perf_counter()
        check_data_use(runtime, name, None, hash_file=hashed)
        samples[name].append(time.perf_counter() - start)
print(json.dumps({name: statistics.median(times) for name, times in samples.items()}))
"""


def _gate_in_process(repo: Path, env: dict[str, str], names: list[str]) -> dict[str, float]:
    argv = [sys.executable, "-c", _GATE, str(GATE_ROUNDS), *names]
    done = subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True, text=True)
    return {name: float(t) for name, t in json.loads(done.stdout).items()}


def _check(root: Path, env: dict[str, str]) -> dict[str, Any]:
    """Three commands in rotating order, CHECK_ROUNDS times: the check of the 1 GB file, of a
    one-line file and of a second one-line file. The third gives the noise floor of the same
    run: the difference between two commands that do identical work."""
    repo = root / "big"
    repo.mkdir()
    (repo / "envguard.toml").write_text(POLICY)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=repo, check=True, env=env)
    block = os.urandom(1 << 20)
    with (repo / "big.bin").open("wb") as handle:
        for _ in range(BIG >> 20):
            handle.write(block)
    (repo / "tiny.csv").write_text("id\n1\n")
    (repo / "tiny2.csv").write_text("id\n2\n")
    files = ["big.bin", "tiny.csv", "tiny2.csv"]
    subprocess.run([str(BIN / "dvc"), "add", "-q", *files], cwd=repo, env=env, check=True)
    envguard = str(BIN / "envguard")
    subprocess.run([envguard, "dvc", "sync"], cwd=repo, env=env, check=True, capture_output=True)
    # The 1 GB file and DVC's copy of it in .dvc/cache are 2 GB of dirty pages, which the kernel
    # writes back 30 s later (vm.dirty_expire_centisecs), i.e. in the middle of the timed runs.
    os.sync()
    # Byte-compiled modules as an installed package has them (pip writes them; this benchmark
    # may run with PYTHONDONTWRITEBYTECODE=1), kept in a folder of the benchmark's own.
    check_env = {**env, "PYTHONPYCACHEPREFIX": str(root / "pycache")}
    check_env.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in files:  # warm-up: writes the .pyc files, reads envguard's files into the cache
        _timed([envguard, "data", "check", name], repo, check_env)
    gate = _gate_in_process(repo, check_env, files[:2])
    cold = [  # the policy validated and cached anew: the first command after a policy change
        _timed(
            [envguard, "data", "check", "big.bin"],
            repo,
            {**check_env, "XDG_CACHE_HOME": str(root / f"cold-cache-{n}")},
        )
        for n in range(RUNS)
    ]
    _timed(["md5sum", "big.bin"], repo, env)  # warm the page cache for md5sum's benefit
    md5sum = [_timed(["md5sum", "big.bin"], repo, env) for _ in range(RUNS)]
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in files}
    for n in range(CHECK_ROUNDS):  # rotating order: no file is always first or last
        for name in files[n % 3 :] + files[: n % 3]:
            runs[name].append(_timed([envguard, "data", "check", name], repo, check_env))

    def paired(a: str, b: str, index: int) -> float:
        return statistics.median(x[index] - y[index] for x, y in zip(runs[a], runs[b], strict=True))

    return {
        "md5sum": statistics.median(t for t, _ in md5sum),
        "md5sum_cpu": statistics.median(c for _, c in md5sum),
        "big": statistics.median(t for t, _ in runs["big.bin"]),
        "tiny": statistics.median(t for t, _ in runs["tiny.csv"]),
        "big_cpu": statistics.median(c for _, c in runs["big.bin"]),
        "tiny_cpu": statistics.median(c for _, c in runs["tiny.csv"]),
        "cold": statistics.median(t for t, _ in cold),
        "increment": paired("big.bin", "tiny.csv", 0),
        "increment_cpu": paired("big.bin", "tiny.csv", 1),
        "noise": paired("tiny2.csv", "tiny.csv", 0),
        "noise_cpu": paired("tiny2.csv", "tiny.csv", 1),
        "gate_big": gate["big.bin"],
        "gate_tiny": gate["tiny.csv"],
    }


def _check_figures(check: dict[str, Any]) -> dict[str, Any]:
    increment = max(check["gate_big"] - check["gate_tiny"], 0.0)
    return {
        "md5sum_1gb_s": round(check["md5sum"], 3),
        "md5sum_1gb_cpu_s": round(check["md5sum_cpu"], 3),
        "check_1gb_s": round(check["big"], 3),
        "check_one_line_file_s": round(check["tiny"], 3),
        "check_1gb_empty_policy_cache_s": round(check["cold"], 3),
        "check_1gb_cpu_s": round(check["big_cpu"], 3),
        "check_one_line_file_cpu_s": round(check["tiny_cpu"], 3),
        "check_1gb_increment_s": round(check["increment"], 3),
        "check_1gb_increment_cpu_s": round(check["increment_cpu"], 3),
        "noise_floor_s": round(check["noise"], 3),
        "noise_floor_cpu_s": round(check["noise_cpu"], 3),
        "gate_in_process_1gb_ms": round(check["gate_big"] * 1000, 2),
        "gate_in_process_one_line_file_ms": round(check["gate_tiny"] * 1000, 2),
        "gate_1gb_increment_ms": round((check["gate_big"] - check["gate_tiny"]) * 1000, 2),
        "increment_ratio_to_md5sum": round(increment / check["md5sum"], 5),
        "whole_command_increment_ratio_to_md5sum": round(
            max(check["increment"], 0.0) / check["md5sum"], 4
        ),
        "whole_check_ratio_to_md5sum": round(check["big"] / check["md5sum"], 3),
    }


CHECK_COMMAND = (
    "envguard data check on a DVC-tracked 1 GB file: the gate alone in one process, 1 GB file "
    f"and one-line file alternately (median of {GATE_ROUNDS}; fails if it hashes; the goal's "
    f"increment); the whole command, median over {CHECK_ROUNDS} rounds of the paired difference "
    "(1 GB file - one-line file) beside (second one-line file - one-line file), the three in "
    "rotating order, after os.sync(), with byte-compiled modules"
)
CHECK_BASELINE = (
    f"md5sum of the same 1 GB file (median of {RUNS}, warm cache); envguard data check of a "
    "one-line DVC-tracked file in the same repository; the 1 GB check with an empty policy "
    f"cache (median of {RUNS}); same run"
)


def run(parts: tuple[str, ...] = ("push", "check")) -> dict[str, Any]:
    from envguard_dvc import install

    from tests.servers import MotoServer

    root = Path(tempfile.mkdtemp(prefix="envguard-bench-dvc-"))
    env = {
        **os.environ,
        **MotoServer.ENV,
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(root / "site-cache"),
        "XDG_CACHE_HOME": str(root / "xdg-cache"),  # envguard's policy cache, the run's own
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("ENVGUARD_ENV", None)
    was_installed = install.installed()
    install.install()
    moto = MotoServer().start() if "push" in parts else None
    try:
        push = _push(root, env, moto) if moto is not None else None
        check = _check(root, env) if "check" in parts else None
    finally:
        if moto is not None:
            moto.stop()
        if not was_installed:
            install.uninstall()
        shutil.rmtree(root, ignore_errors=True)
    results: dict[str, Any] = {}
    commands, baselines, met = [], [], True
    if push is not None:
        plain, guarded = statistics.median(push["plain"]), statistics.median(push["envguard"])
        ratio = guarded / plain
        met = met and ratio <= 1.3
        commands.append(
            f"dvc push of {FILES} small files with the envguard guard (tags in the upload "
            f"requests, then sync + inventory + tag sweep), median of {PUSH_ROUNDS} rounds "
            "interleaved with the baseline"
        )
        baselines.append(
            "dvc push of the same files with ENVGUARD_DISABLE=1, each push from a fresh copy of "
            "the repository to a fresh bucket"
        )
        results |= {
            "push_plain_s": round(plain, 2),
            "push_envguard_s": round(guarded, 2),
            "push_ratio": round(ratio, 3),
            "push_plain_runs_s": [round(t, 2) for t in push["plain"]],
            "push_envguard_runs_s": [round(t, 2) for t in push["envguard"]],
        }
    if check is not None:
        figures = _check_figures(check)
        met = met and figures["increment_ratio_to_md5sum"] < 0.05
        commands.append(CHECK_COMMAND)
        baselines.append(CHECK_BASELINE)
        results |= figures
    return {
        "name": NAME,
        "command": "; ".join(commands),
        "baseline": "; ".join(baselines),
        "results": results,
        "goals": {"push_ratio": "<= 1.3", "increment_ratio_to_md5sum": "< 0.05"},
        "met": met,
    }


if __name__ == "__main__":  # python -m tests.benchmarks.bench_dvc [push] [check]: prints only
    print(json.dumps(run(tuple(sys.argv[1:]) or ("push", "check")), indent=2))
