#!/usr/bin/env python3
"""A clean release build of one commit, timed: what a newcomer waits for before the cockpit.

Checks the commit out into a temporary folder, fetches its crates first (downloads are not
counted), then runs `cargo build --release --timings` with an empty target folder and
prints the wall time, the CPU time, the number of crates compiled and the slowest units
from cargo's own timing report.

    python3 benches/build-time.py [--rev HEAD] [--top 12] [--keep DIR]

Run it on an otherwise idle machine: every other build on it lengthens the figure.
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def units_from_timings(html):
    """Cargo writes its per-unit figures as a JSON array in the timings page."""
    match = re.search(r"const UNIT_DATA = (\[.*?\]);\n", html, re.S)
    return json.loads(match.group(1)) if match else []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="HEAD", help="commit to build (default HEAD)")
    ap.add_argument("--top", type=int, default=12, help="slowest units to list")
    ap.add_argument("--keep", help="copy cargo's timing report (HTML) into this folder")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="glidepath-build-")
    try:
        src = os.path.join(work, "src")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-q", src, args.rev],
                       check=True)
        env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(work, "target"),
                   CARGO_TERM_COLOR="never")
        subprocess.run(["cargo", "fetch", "--quiet"], cwd=src, env=env, check=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        subprocess.run(["cargo", "build", "--release", "--timings", "--quiet"],
                       cwd=src, env=env, check=True)
        wall = time.monotonic() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

        report = os.path.join(work, "target", "cargo-timings", "cargo-timing.html")
        with open(report, encoding="utf-8") as f:
            units = units_from_timings(f.read())
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            shutil.copy(report, os.path.join(args.keep, f"cargo-timing-{args.rev}.html"))

        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", args.rev],
                             check=True, stdout=subprocess.PIPE).stdout.decode().strip()
        print(f"commit {rev}: clean release build {wall / 60:.1f} min wall "
              f"({wall:.0f} s), {cpu:.0f} s CPU, {len(units)} units, {os.cpu_count()} cores")
        for u in sorted(units, key=lambda u: -u.get("duration", 0))[:args.top]:
            name = f"{u['name']} v{u['version']}"
            if u.get("target", "").strip():
                name += f" {u['target'].strip()}"
            print(f"  {u['duration']:7.1f} s  {name}")
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force",
                        os.path.join(work, "src")], check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
