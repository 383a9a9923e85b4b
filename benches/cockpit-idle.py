#!/usr/bin/env python3
"""The cockpit in a real terminal (tmux): time from start to the first frame, and CPU used
while a run waits on a `pause: {}` step for 60 seconds.

    python3 benches/cockpit-idle.py [--seconds 60] [--binary target/release/glidepath]
"""

import argparse
import os
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIPELINE = """apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: idle }
spec:
  stages:
    - name: prod
      steps:
        - name: hold
          pause: {}
"""


def tmux(*args):
    return subprocess.run(["tmux", "-L", "glidepath-idle", *args], check=True,
                          stdout=subprocess.PIPE).stdout.decode()


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/glidepath"))
    a = p.parse_args()
    if not os.path.exists(a.binary):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as home:
        path = os.path.join(home, "idle.yaml")
        open(path, "w").write(PIPELINE)
        started = time.monotonic()
        tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "idle",
             f"GLIDEPATH_HOME={home} {a.binary} run {path}")
        try:
            while "hold paused" not in tmux("capture-pane", "-p", "-t", "idle"):
                time.sleep(0.005)
            first = time.monotonic() - started
            pid = int(subprocess.run(["pgrep", "-f", f"{a.binary} run {path}"],
                                     stdout=subprocess.PIPE).stdout.split()[0])
            before = cpu_seconds(pid)
            time.sleep(a.seconds)
            used = cpu_seconds(pid) - before
        finally:
            tmux("kill-server")
    print(f"start to the first frame showing the paused step: {first * 1000:.0f} ms "
          "(includes process start and tmux polling; target < 150 ms)")
    print(f"CPU while idle on a paused run: {used:.2f} s over {a.seconds} s = "
          f"{100 * used / a.seconds:.2f}% of a core (target < 1%)")


if __name__ == "__main__":
    main()
