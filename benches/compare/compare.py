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
SCENARIOS; later work adds its own (image backup, mount read, check --read-data, prune).
"""

import argparse
import dataclasses
import os
import platform
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

    def version(self):
        out = run([self.binary, *self.version_args], env=self.env, check=False)
        return out.decode(errors="replace").strip().splitlines()[0] if out else "?"


class Cairn(Tool):
    name = "cairn"

    def __init__(self, work, compression, binary):
        super().__init__(work, compression)
        self.binary = binary
        self.env.update(CAIRN_REPOSITORY=str(self.repo), CAIRN_PASSWORD=PASSWORD, CAIRN_CACHE_DIR=str(self.cache))

    def init(self):
        level = [] if self.compression is None else ["--compression", str(self.compression)]
        run([self.binary, "init", *level], env=self.env)

    def backup(self, data):
        return measured([self.binary, "-q", "backup", data], env=self.env)

    def restore(self, target):
        return measured([self.binary, "-q", "restore", "latest", "--target", target], env=self.env)


class Restic(Tool):
    name = "restic"
    binary = "restic"
    version_args = ("version",)

    def __init__(self, work, compression):
        super().__init__(work, compression)
        self.env.update(RESTIC_REPOSITORY=str(self.repo), RESTIC_PASSWORD=PASSWORD, RESTIC_CACHE_DIR=str(self.cache))

    def init(self):
        run(["restic", "init", "--repository-version", "2"], env=self.env)

    def flags(self):
        # restic's "auto" is zstd's default speed, about level 3.
        return [] if self.compression is None else ["--compression", "auto"]

    def backup(self, data):
        return measured(["restic", "-q", "backup", *self.flags(), data], env=self.env)

    def restore(self, target):
        return measured(["restic", "-q", "restore", "latest", "--target", target], env=self.env)


class Rustic(Tool):
    name = "rustic"
    binary = "rustic"

    def __init__(self, work, compression):
        super().__init__(work, compression)
        self.env.update(RUSTIC_REPOSITORY=str(self.repo), RUSTIC_PASSWORD=PASSWORD, RUSTIC_CACHE_DIR=str(self.cache))

    def init(self):
        level = [] if self.compression is None else ["--set-compression", str(self.compression)]
        run(["rustic", "init", *level], env=self.env)

    def backup(self, data):
        return measured(["rustic", "--no-progress", "backup", data], env=self.env)

    def restore(self, target):
        return measured(["rustic", "--no-progress", "restore", "latest", target], env=self.env)


class Borg(Tool):
    name = "borg"
    binary = "borg"

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


def scenario_initial(tool, ctx):
    tool.init()
    m = tool.backup(str(ctx.data))
    m.repo_bytes = tree_size(tool.repo)
    return m


def scenario_unchanged(tool, ctx):
    m = tool.backup(str(ctx.data))
    m.repo_bytes = tree_size(tool.repo)
    return m


def scenario_incremental(tool, ctx):
    # Every tool backs up the same path with the same delta: mutate the shared tree once.
    if not (ctx.data / "added-files").exists():
        mutate_tree(ctx.data, ctx.new_files)
    m = tool.backup(str(ctx.data))
    m.repo_bytes = tree_size(tool.repo)
    return m


def scenario_restore(tool, ctx):
    target = ctx.work / f"restore-{tool.name}"
    if target.exists():
        shutil.rmtree(target)
    m = tool.restore(str(target))
    restored = tree_size(target)
    shutil.rmtree(target, ignore_errors=True)
    m.repo_bytes = tree_size(tool.repo)
    if restored < tree_size(ctx.data) * 0.99:
        raise RuntimeError(f"{tool.name} restored {restored} bytes of {tree_size(ctx.data)}")
    return m


# Order matters: each scenario continues from the state the previous one left.
SCENARIOS = {
    "initial": scenario_initial,
    "unchanged": scenario_unchanged,
    "incremental": scenario_incremental,
    "restore": scenario_restore,
}


# ---------------------------------------------------------------- limits

def limits(ctx):
    """What the hardware allows on the same bytes: read, zstd on both cores, BLAKE3, write."""
    out = {}
    files = [str(p) for p in sorted(ctx.data.rglob("*")) if p.is_file()]
    size = tree_size(ctx.data)
    listing = ctx.work / "files.txt"
    listing.write_text("\0".join(files))
    m = measured(["sh", "-c", f"xargs -0 cat < {listing} > /dev/null"])
    out["read (cat)"] = size / m.wall
    if shutil.which("zstd"):
        m = measured(["sh", "-c", f"xargs -0 cat < {listing} | zstd -3 -T2 -q -c > /dev/null"])
        out["zstd -3, 2 threads"] = size / m.wall
    if shutil.which("b3sum"):
        m = measured(["sh", "-c", f"xargs -0 cat < {listing} | b3sum --num-threads 2 > /dev/null"])
        out["BLAKE3 (b3sum)"] = size / m.wall
    probe = ctx.work / "write-probe"
    count = max(1, min(1024, size >> 20))
    m = measured(["dd", "if=/dev/zero", f"of={probe}", "bs=1M", f"count={count}", "conv=fsync"])
    probe.unlink()
    out["write (dd, fsync)"] = (count << 20) / m.wall
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
            ratio = "" if tool == "cairn" or base is None else f"{m.wall / base.wall:.2f}x"
            lines.append(f"| {scenario} | {tool} | {m.wall:.2f} | {m.cpu:.2f} | {fmt_bytes(m.rss_kib * 1024)} "
                         f"| {fmt_bytes(m.repo_bytes)} | {ratio} |")
    if limit:
        lines += ["", "Machine limits on the same bytes:", "", "| what | throughput |", "|---|---:|"]
        lines += [f"| {k} | {fmt_bytes(v)}/s |" for k, v in limit.items()]
        initial = results.get(("cairn", "initial"))
        if initial:
            rate = meta["dataset_bytes"] / initial.wall
            shares = [f"{rate / limit[k]:.0%} of {k}" for k in ("read (cat)", "zstd -3, 2 threads") if k in limit]
            lines += ["", f"cairn initial backup: {fmt_bytes(rate)}/s ({', '.join(shares)})."]
    lines += ["", "Versions: " + "; ".join(f"{k} {v}" for k, v in meta["versions"].items())]
    if meta["skipped"]:
        lines += ["Skipped: " + "; ".join(f"{k}: {v}" for k, v in meta["skipped"].items())]
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
    args = parser.parse_args()

    chosen = [s for s in args.scenarios.split(",") if s]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    # Each scenario continues from the state the previous one left, so the first always runs.
    scenarios = [s for s in SCENARIOS if s in chosen or s == "initial"]
    wanted = [t for t in args.tools.split(",") if t]
    if not Path(TIME).exists():
        parser.error(f"{TIME} is missing: apt-get install time")
    if not Path(args.cairn_bin).exists():
        parser.error(f"no cairn binary at {args.cairn_bin}: build with `cargo build --release` or pass --cairn-bin")

    size = (4 if args.smoke else args.size_mib) << 20
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="cairn-compare-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        data = work / "data"
        # Files up to 4 MiB: a tree of tens of thousands of real files, like a home or /etc.
        count, used = build_tree(data, size, max_file=(1 << 20) if args.smoke else (4 << 20))
        ctx = Context(work, data, new_files=3 if args.smoke else 300)
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
        results = {}
        # Scenarios in order for each tool; tools one after another, so no two runs overlap.
        for scenario in scenarios:
            for tool in tools:
                try:
                    results[(tool.name, scenario)] = SCENARIOS[scenario](tool, ctx)
                except RuntimeError as error:
                    skipped[f"{tool.name}/{scenario}"] = str(error).splitlines()[0]
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
        }
        text = report(results, [t.name for t in tools], chosen, limit, meta)
        print(text)
        if args.update_doc:
            # One section per compression setting, so both runs stay in the document.
            update_doc("compare" if args.zstd_level is None else f"compare-zstd{args.zstd_level}", text)
        missing = [s for s in chosen if ("cairn", s) not in results and "cairn" in wanted]
        return 1 if missing else 0
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
