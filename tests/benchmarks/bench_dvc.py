"""DVC: what envguard adds to `dvc push`, and what `envguard data check` costs on a large
DVC-tracked file. Both against the plain tool in the same run, on moto's S3 server (127.0.0.1).

- `dvc push` of 1,000 small files with the guard on (push, then envguard's sync and tag sweep
  in the same process) vs `dvc push` of the same files with ENVGUARD_DISABLE=1, each to a fresh
  bucket. Goal: at most 1.3x.
- `envguard data check` of a DVC-tracked 1 GB file vs `md5sum` of it. envguard's fixed cost
  (interpreter, policy, lineage store, reading the .dvc file) is measured on a one-line file
  tracked by DVC in the same repository, so that both take the same path;
  the goal applies to what the 1 GB file adds to it: under 5% of md5sum's time, i.e. the file is
  not read. The whole command's time is reported beside it.
"""

from __future__ import annotations

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


def _check(root: Path, env: dict[str, str]) -> dict[str, float]:
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
    subprocess.run(
        [str(BIN / "dvc"), "add", "-q", "big.bin", "tiny.csv"], cwd=repo, env=env, check=True
    )
    envguard = str(BIN / "envguard")
    subprocess.run([envguard, "dvc", "sync"], cwd=repo, env=env, check=True, capture_output=True)
    _run(["md5sum", "big.bin"], repo, env)  # warm the page cache for md5sum's benefit
    md5sum = [_run(["md5sum", "big.bin"], repo, env) for _ in range(RUNS)]
    big: list[float] = []
    tiny: list[float] = []
    for _ in range(RUNS):  # interleaved, so that both see the same machine
        big.append(_run([envguard, "data", "check", "big.bin"], repo, env))
        tiny.append(_run([envguard, "data", "check", "tiny.csv"], repo, env))
    return {
        "md5sum": statistics.median(md5sum),
        "big": statistics.median(big),
        "tiny": statistics.median(tiny),
    }


def run() -> dict[str, Any]:
    from envguard_dvc import install

    from tests.servers import MotoServer

    root = Path(tempfile.mkdtemp(prefix="envguard-bench-dvc-"))
    env = {
        **os.environ,
        **MotoServer.ENV,
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(root / "site-cache"),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("ENVGUARD_ENV", None)
    was_installed = install.installed()
    install.install()
    moto = MotoServer().start()
    try:
        push = _push(root, env, moto)
        check = _check(root, env)
    finally:
        moto.stop()
        if not was_installed:
            install.uninstall()
        shutil.rmtree(root, ignore_errors=True)
    plain, guarded = statistics.median(push["plain"]), statistics.median(push["envguard"])
    ratio = guarded / plain
    increment = max(check["big"] - check["tiny"], 0.0)
    return {
        "name": NAME,
        "command": f"dvc push of {FILES} small files with the envguard guard (tags in the upload "
        f"requests, then sync + inventory + tag sweep), median of {PUSH_ROUNDS} rounds "
        f"interleaved with the baseline; envguard data check on a DVC-tracked 1 GB file "
        f"(median of {RUNS})",
        "baseline": "dvc push of the same files with ENVGUARD_DISABLE=1, each push from a fresh "
        f"copy of the repository to a fresh bucket; md5sum of the same 1 GB file (median of "
        f"{RUNS}, warm cache); same run",
        "results": {
            "push_plain_s": round(plain, 2),
            "push_envguard_s": round(guarded, 2),
            "push_ratio": round(ratio, 3),
            "push_plain_runs_s": [round(t, 2) for t in push["plain"]],
            "push_envguard_runs_s": [round(t, 2) for t in push["envguard"]],
            "md5sum_1gb_s": round(check["md5sum"], 3),
            "check_1gb_s": round(check["big"], 3),
            "check_one_line_file_s": round(check["tiny"], 3),
            "check_1gb_increment_s": round(increment, 3),
            "increment_ratio_to_md5sum": round(increment / check["md5sum"], 4),
            "whole_check_ratio_to_md5sum": round(check["big"] / check["md5sum"], 3),
        },
        "goals": {"push_ratio": "<= 1.3", "increment_ratio_to_md5sum": "< 0.05"},
        "met": ratio <= 1.3 and increment / check["md5sum"] < 0.05,
    }
