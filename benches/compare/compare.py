#!/usr/bin/env python3
"""Peer benchmark: cairn beside restic, borg and rustic on the same data, in one run.

    python3 benches/compare/compare.py                       # every scenario, every tool
    python3 benches/compare/compare.py --scenarios initial,restore --tools cairn,restic
    python3 benches/compare/compare.py --smoke               # tiny dataset, seconds (test suite)

Datasets are built deterministically from files already on the machine (sorted paths under
/usr), so every run and every tool sees the same bytes. Each tool runs each scenario in turn;
wall time, CPU time and peak RSS come from wait4(2), repository size from the files on disk.
With --update-doc the result table replaces the marked section of docs/benchmarks.md (numbers
there are never edited by hand).

A scenario is a function `scenario_<name>(tool, ctx) -> Measurement | None` registered in
SCENARIOS (None: the tool has no such feature); PREREQUISITES names the scenarios whose state
another one needs. Mount scenarios mount each tool's repository with its own FUSE command
(cairn, restic and rustic mount the latest snapshot, borg the latest archive), drop the page
cache (as root), run a reader, and report the mount process's peak RSS (VmHWM).

Every scenario checks, for every tool, that the measured command did its job before its time
is kept: each backup added one snapshot, restores and mounts give back the source's bytes,
forget+prune kept the snapshots the policy keeps and freed space, check exited 0. A scenario
that fails is reported as FAILED with no time, and the run exits 1.
"""

import argparse
import contextlib
import dataclasses
import datetime
import filecmp
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches"))
from doc_section import replace as update_doc  # noqa: E402
PASSWORD = "benchmark password"
TIME = "/usr/bin/time"  # GNU time (Debian package `time`)


@dataclasses.dataclass
class Measurement:
    wall: float
    cpu: float
    rss_kib: int
    repo_bytes: int = 0


class OutcomeError(RuntimeError):
    """A measured command did not do its job (no snapshot made, wrong bytes restored, no space
    freed): its time is not reported, and the run fails."""


def run(cmd, *, env=None, check=True):
    """Runs a set-up command (not measured) and returns its stdout."""
    proc = subprocess.run([str(c) for c in cmd], env=env, stdin=subprocess.DEVNULL, capture_output=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): "
                           f"{proc.stderr.decode(errors='replace')[-2000:]}")
    return proc.stdout


def measured(cmd, *, env=None, cwd=None, check=True):
    """Runs `cmd` under GNU time: wall time, user+system CPU, and peak RSS. GNU time forks the
    command from its own small process; measuring from this Python process instead would count
    Python's memory, which a forked child inherits in its high-water mark."""
    with tempfile.NamedTemporaryFile("r") as stats, tempfile.TemporaryFile() as stderr:
        timed = [TIME, "-f", "%e %U %S %M", "-o", stats.name, *[str(c) for c in cmd]]
        proc = subprocess.run(timed, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=stderr)
        if check and proc.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}): "
                               f"{stderr.read().decode(errors='replace')[-2000:]}")
        wall, user, system, rss_kib = stats.read().split()[-4:]
    return Measurement(float(wall), float(user) + float(system), int(rss_kib))


def tree_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


# ---------------------------------------------------------------- datasets

def build_tree(target, budget, max_file):
    """Copies regular files from /usr, in sorted path order, until `budget` bytes."""
    target.mkdir(parents=True)
    used = count = 0
    for source in sorted(p for p in Path("/usr").rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            size = source.stat().st_size
        except OSError:
            continue
        if size > max_file or size == 0:
            continue
        rel = source.relative_to("/usr")
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source, dest)
        except OSError:
            continue
        os.utime(dest, (1_700_000_000, 1_700_000_000))
        used += size
        count += 1
        if used >= budget:
            break
    return count, used


def mutate_tree(root, new_files):
    """Changes 1% of files (every 100th in sorted order gets a 4 KiB block rewritten) and adds
    `new_files` files (copies of others with a changed header): a typical nightly delta."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for i, path in enumerate(files[::100]):
        data = bytearray(path.read_bytes())
        at = len(data) // 2
        data[at:at + 4096] = bytes((i + k) % 251 for k in range(4096))
        path.write_bytes(bytes(data))
    added = root / "added-files"
    added.mkdir()
    for i, source in enumerate(files[7::max(1, len(files) // new_files)][:new_files]):
        (added / f"{i:05d}-{source.name}").write_bytes(f"revision {i}\n".encode() + source.read_bytes())


# ---------------------------------------------------------------- tools

class Tool:
    name = ""
    binary = ""

    def __init__(self, work, compression):
        self.repo = work / f"repo-{self.name}"
        self.cache = work / f"cache-{self.name}"
        self.compression = compression
        self.env = dict(os.environ)

    version_args = ("--version",)
    # How `forget --keep-*` counts (see `retained`): (exclusive, oldest).
    retention_rules = (False, False)

    def sibling(self, work):
        """The same tool with its own repository and cache under `work`."""
        return type(self)(work, self.compression)

    def version(self):
        out = run([self.binary, *self.version_args], env=self.env, check=False)
        return out.decode(errors="replace").strip().splitlines()[0] if out else "?"

    def on_s3(self, work, s3):
        """The same tool with a repository at `<prefix>/<tool>` in the S3 bucket `s3` describes
        (ENDPOINT, BUCKET and the AWS variables, from tests/servers/garage.sh); None if the
        tool cannot use S3."""
        return None

    def snapshot_count(self):
        """How many snapshots (borg: archives) the repository holds, as the tool lists them."""
        text = run(self.list_command(), env=self.env)
        try:
            listed = json.loads(text)
        except json.JSONDecodeError:
            # cairn: JSON Lines, one snapshot per line (an empty repository prints nothing).
            listed = [json.loads(line) for line in text.splitlines() if line.strip()]
        if isinstance(listed, dict) and listed.get("message_type") == "snapshot":
            listed = [listed]  # cairn, one snapshot
        if isinstance(listed, dict):
            listed = listed["archives"]  # borg
        if listed and isinstance(listed[0], dict) and "snapshots" in listed[0]:
            return sum(len(group["snapshots"]) for group in listed)  # rustic: per group
        return len(listed)

    def list_command(self):
        return [self.binary, "snapshots", "--json"]

    def backup_checked(self, data, extra=()):
        """A measured backup that must have added exactly one snapshot."""
        before = self.snapshot_count()
        m = self.backup(data, *([extra] if extra else []))
        after = self.snapshot_count()
        if after != before + 1:
            raise OutcomeError(f"{self.name} backup left {after} snapshots (had {before})")
        return m


class Cairn(Tool):
    name = "cairn"

    init_args = ()  # extra `cairn init` arguments (--cairn-init), e.g. a chunk size to measure

    def __init__(self, work, compression, binary):
        super().__init__(work, compression)
        self.binary = binary
        self.env.update(CAIRN_REPOSITORY=str(self.repo), CAIRN_PASSWORD=PASSWORD, CAIRN_CACHE_DIR=str(self.cache))

    def sibling(self, work):
        return Cairn(work, self.compression, self.binary)

    def on_s3(self, work, s3):
        tool = self.sibling(work)
        tool.env.update(aws_env(s3), CAIRN_REPOSITORY=f"s3:{s3['ENDPOINT']}/{s3['BUCKET']}/cairn")
        return tool

    def init(self):
        level = [] if self.compression is None else ["--compression", str(self.compression)]
        run([self.binary, "init", *level, *self.init_args], env=self.env)

    def backup(self, data, extra=()):
        return measured([self.binary, "-q", "backup", data, *extra], env=self.env)

    def restore(self, target):
        return measured([self.binary, "-q", "restore", "latest", "--target", target], env=self.env)

    def restore_file(self, path, target):
        return measured([self.binary, "-q", "restore", f"latest:{path}", "--target", target], env=self.env)

    def check_data(self):
        return measured([self.binary, "-q", "check", "--read-data"], env=self.env)

    def backup_at(self, data, stamp):
        run([self.binary, "-q", "backup", data, "--time", stamp], env=self.env)

    def forget_prune(self, policy):
        return measured([self.binary, "-q", "forget", *policy, "--prune"], env=self.env)

    def mount_command(self, mnt):
        # The whole-repository view, as users browse it.
        return [self.binary, "mount", mnt], mnt / "snapshots" / "latest"

    def list_command(self):
        return [self.binary, "--json", "snapshots"]


class Restic(Tool):
    name = "restic"
    binary = "restic"
    version_args = ("version",)

    def __init__(self, work, compression):
        super().__init__(work, compression)
        self.env.update(RESTIC_REPOSITORY=str(self.repo), RESTIC_PASSWORD=PASSWORD, RESTIC_CACHE_DIR=str(self.cache))

    def init(self):
        run(["restic", "init", "--repository-version", "2"], env=self.env)

    def on_s3(self, work, s3):
        tool = self.sibling(work)
        tool.env.update(aws_env(s3), RESTIC_REPOSITORY=f"s3:{s3['ENDPOINT']}/{s3['BUCKET']}/restic")
        return tool

    def flags(self):
        # restic's "auto" is zstd's default speed, about level 3.
        return [] if self.compression is None else ["--compression", "auto"]

    def backup(self, data):
        return measured(["restic", "-q", "backup", *self.flags(), data], env=self.env)

    def restore(self, target):
        return measured(["restic", "-q", "restore", "latest", "--target", target], env=self.env)

    def restore_file(self, path, target):
        return measured(["restic", "-q", "restore", "latest", "--include", path, "--target", target], env=self.env)

    def check_data(self):
        return measured(["restic", "-q", "check", "--read-data"], env=self.env)

    def backup_at(self, data, stamp):
        run(["restic", "-q", "backup", *self.flags(), "--time", stamp, data], env=self.env)

    def forget_prune(self, policy):
        return measured(["restic", "-q", "forget", *policy, "--prune"], env=self.env)

    def mount_command(self, mnt):
        return ["restic", "mount", mnt], mnt / "snapshots" / "latest"


class Rustic(Tool):
    name = "rustic"
    binary = "rustic"
    retention_rules = (False, True)

    def __init__(self, work, compression):
        super().__init__(work, compression)
        self.env.update(RUSTIC_REPOSITORY=str(self.repo), RUSTIC_PASSWORD=PASSWORD, RUSTIC_CACHE_DIR=str(self.cache))

    def init(self):
        level = [] if self.compression is None else ["--set-compression", str(self.compression)]
        run(["rustic", "init", *level], env=self.env)

    def on_s3(self, work, s3):
        # rustic reaches S3 through OpenDAL, configured by RUSTIC_REPO_OPT_* variables.
        tool = self.sibling(work)
        tool.env.update(aws_env(s3), RUSTIC_REPOSITORY="opendal:s3",
                        RUSTIC_REPO_OPT_ENDPOINT=s3["ENDPOINT"], RUSTIC_REPO_OPT_BUCKET=s3["BUCKET"],
                        RUSTIC_REPO_OPT_ROOT="/rustic", RUSTIC_REPO_OPT_REGION=s3["AWS_REGION"])
        return tool

    def backup(self, data):
        return measured(["rustic", "--no-progress", "backup", data], env=self.env)

    def restore(self, target):
        return measured(["rustic", "--no-progress", "restore", "latest", target], env=self.env)

    def restore_file(self, path, target):
        return measured(["rustic", "--no-progress", "restore", f"latest:{path}", target], env=self.env)

    def check_data(self):
        return measured(["rustic", "--no-progress", "check", "--read-data"], env=self.env)

    def backup_at(self, data, stamp):
        run(["rustic", "--no-progress", "backup", "--time", stamp + "+0000", data], env=self.env)

    def forget_prune(self, policy):
        return measured(["rustic", "--no-progress", "forget", *policy, "--prune"], env=self.env)

    def mount_command(self, mnt):
        # Mounts under the snapshot's path template; `latest` alone as the root.
        return ["rustic", "--no-progress", "mount", mnt, "latest"], mnt


class Borg(Tool):
    name = "borg"
    binary = "borg"
    retention_rules = (True, True)


    def __init__(self, work, compression):
        super().__init__(work, compression)
        self.serial = 0
        self.env.update(BORG_REPO=str(self.repo), BORG_PASSPHRASE=PASSWORD,
                        BORG_CACHE_DIR=str(self.cache), BORG_BASE_DIR=str(self.cache),
                        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes", BORG_RELOCATED_REPO_ACCESS_IS_OK="yes")

    def init(self):
        run(["borg", "init", "--encryption", "repokey-blake2"], env=self.env)

    def backup(self, data):
        self.serial += 1
        level = [] if self.compression is None else ["--compression", f"zstd,{self.compression}"]
        return measured(["borg", "create", *level, f"::run{self.serial}", data], env=self.env)

    def restore(self, target):
        Path(target).mkdir(parents=True, exist_ok=True)
        return measured(["borg", "extract", f"::run{self.serial}"], env=self.env, cwd=target)

    def restore_file(self, path, target):
        Path(target).mkdir(parents=True, exist_ok=True)
        return measured(["borg", "extract", "--sparse", f"::run{self.serial}", path.lstrip("/")],
                        env=self.env, cwd=target)

    def mount_command(self, mnt):
        return ["borg", "mount", "-f", f"::run{self.serial}", mnt], mnt

    def check_data(self):
        return measured(["borg", "check", "--verify-data"], env=self.env)

    def backup_at(self, data, stamp):
        self.serial += 1
        run(["borg", "create", "--timestamp", stamp.replace(" ", "T"), f"::run{self.serial}", data],
            env=self.env)

    def forget_prune(self, policy):
        # borg's prune only deletes archives; compact frees the space.
        return measured(["sh", "-c", f"borg prune {' '.join(policy)} && borg compact"], env=self.env)

    def list_command(self):
        return ["borg", "list", "--json"]



def find_peers(install):
    """The peers available, installing missing ones when asked; a reason for each one skipped."""
    skipped = {}
    if install and os.geteuid() == 0:
        missing = [pkg for tool, pkg in (("restic", "restic"), ("borg", "borgbackup"), (TIME, "time"))
                   if not shutil.which(tool)]
        if missing:
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cargo_installs = {
            "rustic": ["rustic-rs", "--no-default-features", "--features", "mount"],
            "b3sum": ["b3sum"],  # the BLAKE3 limit
        }
        for binary, crate in cargo_installs.items():
            if not shutil.which(binary) and shutil.which("cargo"):
                subprocess.run(["cargo", "install", "--locked", *crate], check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.environ["PATH"] = f"{os.environ['PATH']}:{Path.home() / '.cargo' / 'bin'}"
    peers = []
    for cls, how in ((Restic, "apt-get install restic"), (Borg, "apt-get install borgbackup"),
                     (Rustic, "cargo install --locked rustic-rs --no-default-features --features mount")):
        if shutil.which(cls.binary):
            peers.append(cls)
        else:
            skipped[cls.name] = f"not installed (install with: {how})"
    return peers, skipped


# ---------------------------------------------------------------- scenarios

@dataclasses.dataclass
class Context:
    work: Path
    data: Path
    new_files: int
    images: Path = None
    dense_bytes: int = 0
    sparse_bytes: int = 0
    random_reads: int = 0
    catalog_snapshots: int = 0
    mount_rss_kib: int = 0
    vm_dir: Path = None
    vm_content_bytes: int = 0
    vm_image_bytes: int = 0
    vm_tools: dict = dataclasses.field(default_factory=dict)
    vm_growth: dict = dataclasses.field(default_factory=dict)
    check_repo: Path = None
    retention_snapshots: int = 0
    retention_bytes: int = 0
    s3: dict = None
    s3_tools: dict = dataclasses.field(default_factory=dict)


def scenario_initial(tool, ctx):
    tool.init()
    m = tool.backup_checked(str(ctx.data))
    m.repo_bytes = tree_size(tool.repo)
    return m


def scenario_unchanged(tool, ctx):
    m = tool.backup_checked(str(ctx.data))
    m.repo_bytes = tree_size(tool.repo)
    return m


def scenario_incremental(tool, ctx):
    # Every tool backs up the same path with the same delta: mutate the shared tree once.
    if not (ctx.data / "added-files").exists():
        mutate_tree(ctx.data, ctx.new_files)
    m = tool.backup_checked(str(ctx.data))
    m.repo_bytes = tree_size(tool.repo)
    return m


def restored_root(source, target):
    """Where a tool put the restored `source` under `target`: at its full path (cairn, restic,
    rustic) or at the target itself."""
    nested = target / str(source).lstrip("/")
    return nested if nested.is_dir() else target


def assert_same_files(tool, source, restored):
    """Every file under `source` is in `restored` with the same bytes, and nothing else is."""
    wanted = sorted(p.relative_to(source) for p in source.rglob("*") if p.is_file())
    got = sorted(p.relative_to(restored) for p in restored.rglob("*") if p.is_file())
    if wanted != got:
        missing = sorted(set(wanted) - set(got))[:3]
        extra = sorted(set(got) - set(wanted))[:3]
        raise OutcomeError(f"{tool.name} restored {len(got)} files of {len(wanted)} "
                           f"(missing {missing}, unexpected {extra})")
    for rel in wanted:
        if not filecmp.cmp(source / rel, restored / rel, shallow=False):
            raise OutcomeError(f"{tool.name} restored different bytes in {rel}")


def scenario_restore(tool, ctx):
    target = ctx.work / f"restore-{tool.name}"
    if target.exists():
        shutil.rmtree(target)
    m = tool.restore(str(target))
    assert_same_files(tool, ctx.data, restored_root(ctx.data, target))
    shutil.rmtree(target, ignore_errors=True)
    m.repo_bytes = tree_size(tool.repo)
    return m


def scenario_check(tool, ctx):
    """Full verification of the tree repository (all snapshots so far): `check --read-data`
    (borg: `check --verify-data`), page cache dropped first."""
    drop_caches()
    m = tool.check_data()
    m.repo_bytes = tree_size(tool.repo)
    if tool.name == "cairn":
        ctx.check_repo = tool.repo
    return m


RETENTION_POLICY = ["--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "12"]


def scenario_forget_prune(tool, ctx):
    """A repository of `retention_snapshots` daily snapshots of a small changing tree (one per
    day, like a year of nightly backups), then `forget --prune` with a typical policy
    (borg: `prune` + `compact`). Only the last step is measured."""
    work = ctx.work / "retention"
    source = work / "source"
    if not source.exists():
        build_tree(source, ctx.retention_bytes, max_file=256 << 10)
    repos = tool.sibling(work / "repos")
    (work / "repos").mkdir(parents=True, exist_ok=True)
    repos.init()
    files = sorted(p for p in source.rglob("*") if p.is_file())
    for day in range(ctx.retention_snapshots):
        target = files[day % len(files)]
        target.write_bytes(target.read_bytes() + f"day {day}\n".encode() * 64)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1_700_000_000 + 86_400 * day))
        repos.backup_at(str(source), stamp)
    drop_caches()
    before = tree_size(repos.repo)
    m = repos.forget_prune(RETENTION_POLICY)
    m.repo_bytes = tree_size(repos.repo)
    shutil.rmtree(source)
    kept = repos.snapshot_count()
    wanted = len(retained(ctx.retention_snapshots, *tool.retention_rules))
    if kept != wanted:
        raise OutcomeError(f"{tool.name} kept {kept} snapshots; the policy keeps {wanted}")
    if m.repo_bytes >= before:
        raise OutcomeError(f"{tool.name} freed nothing: repository {before} -> {m.repo_bytes} bytes")
    return m


def retained(days, exclusive=False, oldest=False):
    """The days whose snapshot RETENTION_POLICY keeps, out of `days` daily snapshots: per rule,
    newest first, the newest of each calendar day, ISO week and month. With `exclusive` a rule
    counts only snapshots no earlier rule kept (borg); with `oldest` a rule that falls short
    of its count also keeps the oldest snapshot (borg, rustic)."""
    times = [time.gmtime(1_700_000_000 + 86_400 * day) for day in range(days)]
    buckets = {"--keep-daily": lambda t: (t.tm_year, t.tm_yday),
               "--keep-weekly": lambda t: datetime.date(t.tm_year, t.tm_mon, t.tm_mday).isocalendar()[:2],
               "--keep-monthly": lambda t: (t.tm_year, t.tm_mon)}
    kept = set()
    for flag, count in zip(RETENTION_POLICY[::2], map(int, RETENTION_POLICY[1::2])):
        taken, last = 0, None
        for day in reversed(range(days)):
            bucket = buckets[flag](times[day])
            if bucket == last:
                continue
            last = bucket
            if not (exclusive and day in kept):
                kept.add(day)
                taken += 1
                if taken == count:
                    break
        if oldest and taken < count and days:
            kept.add(0)
    return kept




def drop_caches():
    """Empties the page cache (root only), so every tool reads its repository from disk."""
    if os.geteuid() == 0:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def unmount(mnt):
    for cmd in (["fusermount3", "-u", mnt], ["fusermount", "-u", mnt], ["umount", "-l", mnt]):
        if shutil.which(cmd[0]) and subprocess.run([str(c) for c in cmd], capture_output=True).returncode == 0:
            return


@contextlib.contextmanager
def mounted(tool, ctx, wanted):
    """Mounts the tool's latest snapshot and yields the snapshot root once `wanted` (a path
    inside it) exists; afterwards records the mount process's peak RSS in ctx.mount_rss_kib."""
    mnt = ctx.work / f"mnt-{tool.name}"
    mnt.mkdir(exist_ok=True)
    argv, root = tool.mount_command(mnt)
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen([str(a) for a in argv], env=tool.env, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log)
        try:
            deadline = time.time() + 900
            while not (root / wanted.lstrip("/")).exists():
                if proc.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"{tool.name} mount failed: {log.read().decode(errors='replace')[-500:]}")
                time.sleep(0.1)
            yield root
            ctx.mount_rss_kib = peak_rss_kib(proc.pid)
        finally:
            unmount(mnt)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def scenario_mount_walk(tool, ctx):
    """`find` and `du -s` over the mounted file tree (the latest tree snapshot)."""
    counted = ctx.work / f"walk-{tool.name}.txt"
    with mounted(tool, ctx, str(ctx.data)) as root:
        tree = root / str(ctx.data).lstrip("/")
        drop_caches()
        m = measured(["sh", "-c", f"find '{tree}' | wc -l > '{counted}' && du -s '{tree}' > /dev/null"])
    m.rss_kib = ctx.mount_rss_kib
    wanted = 1 + sum(len(dirs) + len(files) for _, dirs, files in os.walk(ctx.data))
    if int(counted.read_text()) != wanted:
        raise OutcomeError(f"{tool.name} mount shows {counted.read_text().strip()} entries of {wanted}")
    return m


def build_images(target, dense_bytes, sparse_bytes, seed=7):
    """`dense.bin`: incompressible bytes (the sequential read); `sparse.raw`: a VM-like image,
    one eighth data in 8 MiB extents spread over the file, the rest holes (random reads)."""
    if target.exists():
        return
    target.mkdir()
    rng = random.Random(seed)
    with open(target / "dense.bin", "wb") as f:
        for _ in range(dense_bytes >> 20):
            f.write(rng.randbytes(1 << 20))
    with open(target / "sparse.raw", "wb") as f:
        f.truncate(sparse_bytes)
        extent = min(8 << 20, sparse_bytes // 8)
        for offset in range(0, sparse_bytes, extent * 8):
            f.seek(offset)
            f.write(rng.randbytes(extent))


def scenario_image_backup(tool, ctx):
    build_images(ctx.images, ctx.dense_bytes, ctx.sparse_bytes)
    m = tool.backup_checked(str(ctx.images))
    m.repo_bytes = tree_size(tool.repo)
    return m


def assert_same_bytes(tool, original, copy):
    if subprocess.run(["cmp", "-s", str(original), str(copy)]).returncode != 0:
        raise OutcomeError(f"{tool.name}: {copy} differs from {original}")


def scenario_image_restore(tool, ctx):
    """Restore of dense.bin alone: the reference for reading the same file through the mount."""
    target = ctx.work / f"image-restore-{tool.name}"
    shutil.rmtree(target, ignore_errors=True)
    drop_caches()
    m = tool.restore_file(str(ctx.images / "dense.bin"), str(target))
    # rustic writes a single file to the target path itself; the others under the target.
    restored = [target] if target.is_file() else list(target.rglob("dense.bin"))
    if not restored:
        raise OutcomeError(f"{tool.name} did not restore dense.bin")
    assert_same_bytes(tool, ctx.images / "dense.bin", restored[0])
    if target.is_file():
        target.unlink()
    shutil.rmtree(target, ignore_errors=True)
    return m


def scenario_mount_read(tool, ctx):
    """`cat` of dense.bin through the mount: sequential read throughput."""
    wanted = str(ctx.images / "dense.bin")
    with mounted(tool, ctx, wanted) as root:
        drop_caches()
        m = measured(["cat", root / wanted.lstrip("/")])
        assert_same_bytes(tool, wanted, root / wanted.lstrip("/"))
    m.rss_kib = ctx.mount_rss_kib
    return m


# With a third argument (the original file), every block read is compared with it.
RANDOM_READER = """
import os, random, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
original = os.open(sys.argv[3], os.O_RDONLY) if len(sys.argv) > 3 else None
size = os.fstat(fd).st_size
rng = random.Random(11)
for _ in range(int(sys.argv[2])):
    at = rng.randrange(0, size - 4096) & ~4095
    block = os.pread(fd, 4096, at)
    assert len(block) == 4096
    assert original is None or block == os.pread(original, 4096, at), f"block at {at} differs"
"""


def scenario_mount_random(tool, ctx):
    """Random 4 KiB reads (aligned, uniform over the file) in sparse.raw through the mount."""
    wanted = str(ctx.images / "sparse.raw")
    with mounted(tool, ctx, wanted) as root:
        drop_caches()
        mounted_file = root / wanted.lstrip("/")
        m = measured(["python3", "-c", RANDOM_READER, mounted_file, str(ctx.random_reads)])
        check = ["python3", "-c", RANDOM_READER, mounted_file, str(ctx.random_reads), wanted]
        if subprocess.run([str(c) for c in check], capture_output=True).returncode != 0:
            raise OutcomeError(f"{tool.name} mount served different bytes of sparse.raw")
    m.rss_kib = ctx.mount_rss_kib
    return m


def scenario_mount_catalog(tool, ctx):
    """cairn only: a repository of many small snapshots; time from starting `cairn mount` to
    the end of the first `ls snapshots/`."""
    if not isinstance(tool, Cairn):
        return None
    many = Cairn(ctx.work / "many", None, tool.binary)
    many.repo.parent.mkdir(exist_ok=True)
    run([many.binary, "init", "--argon2-memory", "1024", "--argon2-iterations", "1"], env=many.env)
    source = ctx.work / "many" / "source"
    source.mkdir(exist_ok=True)
    for i in range(ctx.catalog_snapshots):
        (source / "counter").write_text(str(i))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + 3600 * i))
        run([many.binary, "-q", "backup", source, "--time", stamp, "--host", f"host{i % 10}"], env=many.env)
    mnt = ctx.work / "mnt-many"
    mnt.mkdir(exist_ok=True)
    started = time.time()
    proc = subprocess.Popen([many.binary, "mount", mnt], env=many.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not (mnt / "snapshots").exists():
            if proc.poll() is not None or time.time() - started > 120:
                raise RuntimeError("cairn mount of the many-snapshot repository failed")
            time.sleep(0.01)
        listed = len(os.listdir(mnt / "snapshots"))
        wall = time.time() - started
        rss = peak_rss_kib(proc.pid)
    finally:
        unmount(mnt)
        proc.wait(timeout=60)
    if listed != ctx.catalog_snapshots + 1:
        raise RuntimeError(f"listed {listed} entries for {ctx.catalog_snapshots} snapshots")
    return Measurement(wall, 0.0, rss)


def build_vm_image(ctx):
    """A sparse raw ext4 image of `vm_image_bytes` holding `vm_content_bytes` of real files
    from /usr (mke2fs -d), like a VM disk."""
    image = ctx.vm_dir / "disk.raw"
    if image.exists():
        return image
    content = ctx.work / "vm-content"
    build_tree(content, ctx.vm_content_bytes, max_file=64 << 20)
    ctx.vm_dir.mkdir(parents=True, exist_ok=True)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-d", content, image, f"{ctx.vm_image_bytes >> 20}M"])
    shutil.rmtree(content, ignore_errors=True)
    return image


def data_extents(path):
    extents, fd = [], os.open(path, os.O_RDONLY)
    try:
        size, position = os.fstat(fd).st_size, 0
        while position < size:
            try:
                start = os.lseek(fd, position, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            extents.append((start, end))
            position = end
    finally:
        os.close(fd)
    return extents


def change_vm_image(image, runs=200, seed=5):
    """Overwrites about 1% of the image's used bytes in `runs` scattered runs (4 KiB-aligned,
    4 KiB to 252 KiB each), as a day of a VM's writes would."""
    extents = data_extents(image)
    used = sum(end - start for start, end in extents)
    budget = used // 100
    rng = random.Random(seed)
    ranges = []
    with open(image, "r+b") as f:
        written = 0
        while written < budget:
            start, end = rng.choice(extents)
            length = min(rng.randrange(1, 64) * 4096, budget - written, end - start)
            offset = start + (rng.randrange(0, max(1, end - start - length)) & ~4095)
            f.seek(offset)
            f.write(rng.randbytes(length))
            ranges.append({"offset": offset, "length": length})
            written += length
    return ranges


def vm_tool(tool, ctx):
    if tool.name not in ctx.vm_tools:
        ctx.vm_tools[tool.name] = tool.sibling(ctx.work / "vm-repos")
    return ctx.vm_tools[tool.name]


def aws_env(s3):
    return {k: s3[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}


def s3_tool(tool, ctx):
    """The tool's S3 twin, against a three-node Garage cluster on loopback (started once, by
    tests/servers/garage.sh, with the binary scripts/setup-debian --test-servers builds)."""
    if ctx.s3 is None:
        out = run(["bash", str(ROOT / "tests/servers/garage.sh"), "start", str(ctx.work / "garage")])
        ctx.s3 = dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)
    if tool.name not in ctx.s3_tools:
        ctx.s3_tools[tool.name] = tool.on_s3(ctx.work / "s3-caches", ctx.s3)
    return ctx.s3_tools[tool.name]


def scenario_s3_backup(tool, ctx):
    """First backup of the tree into a repository on S3 (Garage, three nodes, replication 3,
    on loopback: the network costs nothing, the protocol and the object store do)."""
    s3 = s3_tool(tool, ctx)
    if s3 is None:
        return None
    s3.init()
    return s3.backup_checked(str(ctx.data))


def scenario_s3_restore(tool, ctx):
    """Restore of that snapshot from S3, checked for size."""
    s3 = s3_tool(tool, ctx)
    if s3 is None:
        return None
    target = ctx.work / f"s3-restore-{tool.name}"
    shutil.rmtree(target, ignore_errors=True)
    m = s3.restore(str(target))
    assert_same_files(tool, ctx.data, restored_root(ctx.data, target))
    shutil.rmtree(target, ignore_errors=True)
    return m


def scenario_vm_initial(tool, ctx):
    """First backup of the sparse ext4 image, into a repository of its own."""
    build_vm_image(ctx)
    vm = vm_tool(tool, ctx)
    (ctx.work / "vm-repos").mkdir(exist_ok=True)
    vm.init()
    m = vm.backup_checked(str(ctx.vm_dir / "disk.raw"))
    m.repo_bytes = tree_size(vm.repo)
    return m


def scenario_vm_incremental(tool, ctx):
    """The image after about 1% of its used blocks changed; repository growth is recorded."""
    marker = ctx.vm_dir.parent / "vm-changed"
    if not marker.exists():
        change_vm_image(ctx.vm_dir / "disk.raw")
        marker.write_text("changed")
    vm = vm_tool(tool, ctx)
    before = tree_size(vm.repo)
    m = vm.backup_checked(str(ctx.vm_dir / "disk.raw"))
    m.repo_bytes = tree_size(vm.repo)
    ctx.vm_growth[tool.name] = m.repo_bytes - before
    return m


def scenario_vm_hinted(tool, ctx):
    """Another 1% change; cairn is told the changed ranges (`--changed-ranges`, as a QEMU dirty
    bitmap would give them), the peers, which take no such hint, back up as usual."""
    marker = ctx.vm_dir.parent / "vm-changed-again.json"
    if not marker.exists():
        import json
        marker.write_text(json.dumps(change_vm_image(ctx.vm_dir / "disk.raw", seed=6)))
    vm = vm_tool(tool, ctx)
    before = tree_size(vm.repo)
    if isinstance(vm, Cairn):
        m = vm.backup_checked(str(ctx.vm_dir / "disk.raw"), ["--changed-ranges", str(marker)])
    else:
        m = vm.backup_checked(str(ctx.vm_dir / "disk.raw"))
    m.repo_bytes = tree_size(vm.repo)
    ctx.vm_growth[f"{tool.name} (hinted run)"] = m.repo_bytes - before
    return m


def scenario_vm_restore(tool, ctx):
    """Restore of the changed image; its bytes are checked."""
    vm = vm_tool(tool, ctx)
    target = ctx.work / f"vm-restore-{tool.name}"
    shutil.rmtree(target, ignore_errors=True)
    image = ctx.vm_dir / "disk.raw"
    drop_caches()
    m = vm.restore_file(str(image), str(target))
    restored = [target] if target.is_file() else list(target.rglob("disk.raw"))
    if not restored:
        raise OutcomeError(f"{tool.name} did not restore the image")
    assert_same_bytes(tool, image, restored[0])

    shutil.rmtree(target, ignore_errors=True)
    return m


# Order matters: each scenario continues from the state the previous one left.
SCENARIOS = {
    "initial": scenario_initial,
    "unchanged": scenario_unchanged,
    "incremental": scenario_incremental,
    "restore": scenario_restore,
    "check": scenario_check,
    "forget-prune": scenario_forget_prune,
    "mount-walk": scenario_mount_walk,
    "image-backup": scenario_image_backup,
    "image-restore": scenario_image_restore,
    "mount-read": scenario_mount_read,
    "mount-random": scenario_mount_random,
    "mount-catalog": scenario_mount_catalog,
    "vm-initial": scenario_vm_initial,
    "vm-incremental": scenario_vm_incremental,
    "vm-hinted": scenario_vm_hinted,
    "vm-restore": scenario_vm_restore,
    "s3-backup": scenario_s3_backup,
    "s3-restore": scenario_s3_restore,
}
MOUNT_SCENARIOS = {"mount-walk", "mount-read", "mount-random", "mount-catalog"}
S3_SCENARIOS = {"s3-backup", "s3-restore"}
# What a scenario needs run before it (besides `initial`, which always runs).
PREREQUISITES = {
    "image-restore": ["image-backup"],
    "mount-read": ["image-backup"],
    "mount-random": ["image-backup"],
    "vm-incremental": ["vm-initial"],
    "vm-hinted": ["vm-initial", "vm-incremental"],
    "vm-restore": ["vm-initial"],
    "s3-restore": ["s3-backup"],
}


def fuse_usable():
    """None when FUSE mounts can run here, else the reason they cannot."""
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as error:
        return f"/dev/fuse is not usable ({error.strerror})"
    if not shutil.which("fusermount3"):
        return "fusermount3 is missing (apt-get install fuse3)"
    return None


def s3_unusable():
    """None when the S3 scenarios can start their Garage cluster here, else why not."""
    if os.environ.get("GARAGE") or shutil.which("garage") or Path("/var/tmp/cairn-tools/bin/garage").exists():
        return None
    return "no garage binary (bash scripts/setup-debian --test-servers builds it)"


# ---------------------------------------------------------------- limits

def limits(ctx):
    """What the hardware allows on the same bytes: read, zstd on both cores, BLAKE3, write."""
    out = {}
    files = [str(p) for p in sorted(ctx.data.rglob("*")) if p.is_file()]
    size = tree_size(ctx.data)
    listing = ctx.work / "files.txt"
    listing.write_text("\0".join(files))
    m = measured(["sh", "-c", f"xargs -0 cat < {listing} > /dev/null"])
    out["read (cat)"] = size / max(m.wall, 0.01)
    if shutil.which("zstd"):
        m = measured(["sh", "-c", f"xargs -0 cat < {listing} | zstd -3 -T2 -q -c > /dev/null"])
        out["zstd -3, 2 threads"] = size / max(m.wall, 0.01)
    if shutil.which("b3sum"):
        m = measured(["sh", "-c", f"xargs -0 cat < {listing} | b3sum --num-threads 2 > /dev/null"])
        out["BLAKE3 (b3sum)"] = size / max(m.wall, 0.01)
    if ctx.check_repo:
        drop_caches()
        m = measured(["sh", "-c", f"find {ctx.check_repo}/data -type f -print0 | xargs -0 cat > /dev/null"])
        out["read cairn repository (cat, cold)"] = tree_size(ctx.check_repo / "data") / max(m.wall, 0.01)
    probe = ctx.work / "write-probe"
    count = max(1, min(1024, size >> 20))
    m = measured(["dd", "if=/dev/zero", f"of={probe}", "bs=1M", f"count={count}", "conv=fsync"])
    probe.unlink()
    out["write (dd, fsync)"] = (count << 20) / max(m.wall, 0.01)
    return out


# ---------------------------------------------------------------- report

def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def report(results, tools, scenarios, limit, meta):
    lines = [f"Run {meta['date']} on {meta['machine']}; dataset {meta['dataset']}; "
             f"compression: {meta['compression']}.", ""]
    lines.append("| scenario | tool | wall s | CPU s | peak RSS | repo size | peer / cairn wall |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for scenario in scenarios:
        base = results.get(("cairn", scenario))
        for tool in tools:
            m = results.get((tool, scenario))
            if m is None:
                continue
            ratio = "" if tool == "cairn" or base is None or base.wall <= 0 else f"{m.wall / base.wall:.2f}x"
            repo = fmt_bytes(m.repo_bytes) if m.repo_bytes else "-"
            lines.append(f"| {scenario} | {tool} | {m.wall:.2f} | {m.cpu:.2f} | {fmt_bytes(m.rss_kib * 1024)} "
                         f"| {repo} | {ratio} |")
    if any(s in MOUNT_SCENARIOS for s in scenarios):
        lines += ["", "Mount rows: CPU is the reader's, peak RSS the mount process's (VmHWM); "
                  "mount-catalog is cairn alone (no peer builds that many snapshots here)."]
    if meta.get("vm_growth"):
        lines += ["", "VM image: " + meta["vm_dataset"] + "; repository growth from the 1% change: " +
                  ", ".join(f"{t} {fmt_bytes(g)}" for t, g in meta["vm_growth"].items()) + "."]
    restore, read = results.get(("cairn", "image-restore")), results.get(("cairn", "mount-read"))
    if restore and read and read.wall > 0:
        lines += [f"cairn mount sequential read: {restore.wall / read.wall:.0%} of cairn restore "
                  "throughput for the same file."]
    if limit:
        lines += ["", "Machine limits on the same bytes:", "", "| what | throughput |", "|---|---:|"]
        lines += [f"| {k} | {fmt_bytes(v)}/s |" for k, v in limit.items()]
        initial = results.get(("cairn", "initial"))
        if initial:
            rate = meta["dataset_bytes"] / initial.wall
            shares = [f"{rate / limit[k]:.0%} of {k}" for k in ("read (cat)", "zstd -3, 2 threads") if k in limit]
            lines += ["", f"cairn initial backup: {fmt_bytes(rate)}/s ({', '.join(shares)})."]
        checked = results.get(("cairn", "check"))
        cold = limit.get("read cairn repository (cat, cold)")
        if checked and cold:
            floor = max(checked.repo_bytes / cold, checked.cpu / (os.cpu_count() or 1))
            lines += [f"cairn check --read-data: {fmt_bytes(checked.repo_bytes / checked.wall)}/s of "
                      f"repository; the floor (cold read of the packs, or its own CPU time spread "
                      f"over every core, whichever is longer) is {floor:.2f} s, the check took "
                      f"{checked.wall / floor:.2f}x that."]
    lines += ["", "Versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items())]
    if meta["skipped"]:
        lines += ["Skipped: " + "; ".join(f"{k}: {v}" for k, v in meta["skipped"].items())]
    if meta["failed"]:
        lines += ["FAILED (no time reported; the run exits 1): " +
                  "; ".join(f"{k}: {v}" for k, v in meta["failed"].items())]

    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--tools", default="cairn,restic,borg,rustic")
    parser.add_argument("--size-mib", type=int, default=1024, help="dataset size")
    parser.add_argument("--zstd-level", type=int, help="run every tool at this zstd level instead of its default")
    parser.add_argument("--cairn-bin", default=str(Path(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/cairn-target")) / "release" / "cairn"))
    parser.add_argument("--work-dir", help="where datasets and repositories go (default: a new directory in /var/tmp)")
    parser.add_argument("--no-install", action="store_true", help="do not install missing peers")
    parser.add_argument("--smoke", action="store_true", help="tiny dataset, only installed tools, no limits")
    parser.add_argument("--update-doc", action="store_true", help="write the table into docs/benchmarks.md")
    parser.add_argument("--cairn-init", default="", help="extra arguments for `cairn init`, e.g. '--chunk-size 128'")
    parser.add_argument("--doc-section", help="the marked section to replace (default: compare, or compare-zstdN)")
    args = parser.parse_args()

    chosen = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    # Each scenario continues from the state the previous one left, so the first always runs.
    needed = set(chosen) | {"initial"} | {p for s in chosen for p in PREREQUISITES.get(s, [])}
    scenarios = [s for s in SCENARIOS if s in needed]
    wanted = [t for t in args.tools.split(",") if t]
    if not Path(TIME).exists():
        parser.error(f"{TIME} is missing: apt-get install time")
    if not Path(args.cairn_bin).exists():
        parser.error(f"no cairn binary at {args.cairn_bin}: build with `cargo build --release` or pass --cairn-bin")

    Cairn.init_args = tuple(args.cairn_init.split())
    size = (4 if args.smoke else args.size_mib) << 20
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="cairn-compare-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        data = work / "data"
        # Files up to 4 MiB: a tree of tens of thousands of real files, like a home or /etc.
        count, used = build_tree(data, size, max_file=(1 << 20) if args.smoke else (4 << 20))
        ctx = Context(work, data, new_files=3 if args.smoke else 300, images=work / "images",
                      dense_bytes=(8 if args.smoke else 1024) << 20,
                      sparse_bytes=(64 if args.smoke else 4096) << 20,
                      random_reads=50 if args.smoke else 2000,
                      catalog_snapshots=10 if args.smoke else 1000,
                      vm_dir=work / "vm" / "image",
                      vm_content_bytes=(8 if args.smoke else 2048) << 20,
                      vm_image_bytes=(64 if args.smoke else 8192) << 20,
                      retention_snapshots=12 if args.smoke else 200,
                      retention_bytes=(1 if args.smoke else 8) << 20)
        no_fuse = fuse_usable()
        no_s3 = s3_unusable()
        peers, skipped = find_peers(install=not (args.no_install or args.smoke))
        classes = {cls.name: cls for cls in peers}
        tools = []
        for name in wanted:
            if name == "cairn":
                tools.append(Cairn(work, args.zstd_level, args.cairn_bin))
            elif name in classes:
                tools.append(classes[name](work, args.zstd_level))
            elif name not in skipped:
                skipped[name] = "unknown tool"
        results, failed = {}, {}
        # Scenarios in order for each tool; tools one after another, so no two runs overlap.
        for scenario in scenarios:
            if scenario in MOUNT_SCENARIOS and no_fuse:
                skipped[scenario] = no_fuse
                continue
            if scenario in S3_SCENARIOS and no_s3:
                skipped[scenario] = no_s3
                continue
            for tool in tools:
                try:
                    measurement = SCENARIOS[scenario](tool, ctx)
                    if measurement is not None:
                        results[(tool.name, scenario)] = measurement
                except RuntimeError as error:  # a command failed, or its outcome was wrong
                    failed[f"{tool.name}/{scenario}"] = str(error).splitlines()[0]
                    print(f"FAILED: {scenario} {tool.name}: {error}", file=sys.stderr)
                    continue
                print(f"done: {scenario} {tool.name}", file=sys.stderr)
        limit = {} if args.smoke else limits(ctx)
        meta = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB, {platform.platform()}",
            "dataset": f"{count} files, {fmt_bytes(used)} from /usr",
            "dataset_bytes": used,
            "compression": "each tool's default" if args.zstd_level is None else f"zstd level {args.zstd_level} for all",
            "versions": {t.name: t.version() for t in tools},
            "skipped": skipped,
            "failed": failed,
            "vm_growth": ctx.vm_growth,
            "vm_dataset": f"{fmt_bytes(ctx.vm_image_bytes)} sparse ext4 (mke2fs -d) holding "
                          f"{fmt_bytes(ctx.vm_content_bytes)} of files from /usr",
        }
        text = report(results, [t.name for t in tools], chosen, limit, meta)
        print(text)
        if args.update_doc:
            # One section per compression setting, so both runs stay in the document.
            default = "compare" if args.zstd_level is None else f"compare-zstd{args.zstd_level}"
            update_doc(args.doc_section or default, text)
        missing = [s for s in chosen if ("cairn", s) not in results and "cairn" in wanted
                   and not (s in MOUNT_SCENARIOS and no_fuse) and not (s in S3_SCENARIOS and no_s3)]
        return 1 if missing or failed else 0
    finally:
        if (work / "garage").exists():
            subprocess.run(["bash", str(ROOT / "tests/servers/garage.sh"), "stop", str(work / "garage")])
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
