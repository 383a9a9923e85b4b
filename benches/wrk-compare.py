#!/usr/bin/env python3
"""glidepath load against wrk: the same nginx on loopback, the same connections, threads
and duration, several rounds in turn. Prints requests/s and CPU per request for each, and
the ratios glidepath / wrk (targets: rps >= 0.9, CPU per request <= 1.2).

    python3 benches/wrk-compare.py [--connections 50] [--threads 1] [--duration 10]
                                   [--rounds 3] [--binary target/release/glidepath]

Needs wrk and nginx (Debian packages `wrk` and `nginx-light`); builds the release binary
when it is missing. nginx runs one worker pinned to CPU 0 and the load generators are
pinned to CPU 1, so each tool gets one whole core and the server is the same for both.
"""

import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nginx(workdir, port):
    os.chmod(workdir, 0o755)  # nginx's worker runs as an unprivileged user
    with open(os.path.join(workdir, "index.html"), "w") as f:
        f.write("hello from nginx\n" * 8)
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
worker_cpu_affinity 01;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {workdir};
        location / {{ }}
    }}
}}
""")
    os.chmod(os.path.join(workdir, "index.html"), 0o644)
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("nginx did not start: " + proc.stderr.read().decode())


def timed(cmd):
    """Runs cmd pinned to CPU 1; returns (stdout, cpu seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["taskset", "-c", "1"] + cmd, check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, cpu


def run_wrk(url, a):
    out, cpu = timed(["wrk", f"-t{a.threads}", f"-c{a.connections}", f"-d{a.duration}s", url])
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, cpu / max(requests, 1), int(errors.group(1)) if errors else 0


def run_glidepath(url, a):
    out, cpu = timed([a.binary, "load", url, "--connections", str(a.connections),
                      "--threads", str(a.threads), "--duration", f"{a.duration}s", "--json"])
    s = json.loads(out)
    return s["rps"], cpu / max(s["requests"], 1), sum(s["errors"].values())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/glidepath"))
    a = p.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install -y wrk nginx-light")
    if not os.path.exists(a.binary):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        nginx = start_nginx(workdir, port)
        url = f"http://127.0.0.1:{port}/index.html"
        try:
            rows = []
            for r in range(1, a.rounds + 1):
                for name, fn in (("wrk", run_wrk), ("glidepath", run_glidepath)):
                    rps, cpu, errors = fn(url, a)
                    rows.append((name, rps, cpu))
                    print(f"round {r}  {name:<10} {rps:>10.0f} req/s  "
                          f"{cpu * 1e6:>6.2f} µs CPU/request  {errors} errors", flush=True)
        finally:
            nginx.terminate()
            nginx.wait()
    med = {n: (statistics.median(r for t, r, _ in rows if t == n),
               statistics.median(c for t, _, c in rows if t == n)) for n in ("wrk", "glidepath")}
    print(f"\n{a.connections} connections, {a.threads} thread(s), {a.duration} s, "
          f"{a.rounds} rounds; medians:")
    for n, (rps, cpu) in med.items():
        print(f"  {n:<10} {rps:>10.0f} req/s  {cpu * 1e6:>6.2f} µs CPU/request")
    print(f"ratio requests/s (glidepath / wrk):      {med['glidepath'][0] / med['wrk'][0]:.3f}"
          "   (target >= 0.9)")
    print(f"ratio CPU per request (glidepath / wrk): {med['glidepath'][1] / med['wrk'][1]:.3f}"
          "   (target <= 1.2)")


if __name__ == "__main__":
    main()
