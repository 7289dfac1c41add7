#!/usr/bin/env python3
"""Five slow clients (issue 16): each downloads a 20 MB PHP-generated response at ~2 MB/s
through one nginx worker, php-fpm `pm static 4`. Measured per configuration: when the PHP
scripts are done (each writes a marker after its last echo; seconds from the clients' start),
the latency of a hello request sent 0.5 s after the clients start, and the worker's peak RSS.

    python3 benches/slow_clients.py            # after scripts/build-nginx.sh

Configurations: fastcgi_pass + php-fpm (reference), fephp_pass -> php-fpm and fephp_pass
embedded, each with fephp_buffering on (the default) and off. Prints a Markdown table.
"""
import os, shutil, socket, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
NGINX = os.path.join(TARGET, "nginx/sbin/nginx")
MODULE = os.path.join(TARGET, "nginx/modules/ngx_http_fephp_module.so")
CLIENTS, SIZE_MB, RATE = 5, 20, 2 * 1024 * 1024

BIG = """<?php
for ($i = 0; $i < 320; $i++) { echo str_pad("$i:", 65536, "."); }
file_put_contents($_GET['m'], sprintf('%.6f', microtime(true)));
"""

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port, limit=15):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")

def slow_client(port, path, done):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    got, t0 = 0, time.time()
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += len(b)
        ahead = got / RATE - (time.time() - t0)
        if ahead > 0:
            time.sleep(ahead)
    done.append(got)

def hello(port, path):
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    assert data.endswith(b"hello"), data[:200]
    return (time.time() - t0) * 1000

def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0

def run(name, loc, work, fpm_sock):
    port = free_port()
    prefix = tempfile.mkdtemp(dir=work)
    os.makedirs(os.path.join(prefix, "logs"))
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = f"""{user}daemon off; master_process on; worker_processes 1; pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn; load_module {MODULE};
events {{ worker_connections 512; }}
http {{ access_log off;
  server {{ listen 127.0.0.1:{port}; root {work}/www;
    location ~ \\.php$ {{ {loc.replace('SOCK', fpm_sock)} }}
  }}
}}
"""
    with open(os.path.join(prefix, "nginx.conf"), "w") as f:
        f.write(conf)
    ng = subprocess.Popen([NGINX, "-p", prefix, "-c", os.path.join(prefix, "nginx.conf")], stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(0.3)
        workers = subprocess.run(["pgrep", "-P", str(ng.pid)], capture_output=True, text=True).stdout.split()
        markers = [os.path.join(prefix, f"m{i}") for i in range(CLIENTS)]
        done, threads = [], []
        start = time.time()
        for m in markers:
            t = threading.Thread(target=slow_client, args=(port, f"/big.php?m={m}", done))
            t.start(); threads.append(t)
        time.sleep(0.5)
        hello_ms = hello(port, "/hello.php")
        for t in threads:
            t.join()
        finished = sorted(float(open(m).read()) - start for m in markers if os.path.exists(m))
        clients_s = time.time() - start
        peak = max((rss_kb(w) for w in workers), default=0)
        spilled = "buffered to a temporary file" in open(os.path.join(prefix, "error.log")).read()
        assert all(d == SIZE_MB * 1024 * 1024 + len("HTTP/1.1 200 OK\r\n") or d > SIZE_MB * 1024 * 1024 for d in done), done
        return (name, finished[0], finished[-1], hello_ms, clients_s, peak // 1024, spilled)
    finally:
        ng.send_signal(3)
        try:
            ng.wait(5)
        except subprocess.TimeoutExpired:
            ng.kill()

def main():
    if not (os.path.exists(NGINX) and os.path.exists(MODULE)):
        raise SystemExit("run scripts/build-nginx.sh first")
    work = tempfile.mkdtemp(prefix="fephp-slow-")
    os.makedirs(os.path.join(work, "www"))
    with open(os.path.join(work, "www/big.php"), "w") as f:
        f.write(BIG)
    with open(os.path.join(work, "www/hello.php"), "w") as f:
        f.write("<?php echo 'hello';")
    sock = os.path.join(work, "fpm.sock")
    user = "user = root\ngroup = root\n" if os.geteuid() == 0 else ""
    with open(os.path.join(work, "fpm.conf"), "w") as f:
        f.write(f"[global]\nerror_log = {work}/fpm.log\ndaemonize = no\n[www]\nlisten = {sock}\n{user}"
                "pm = static\npm.max_children = 4\n")
    fpm = subprocess.Popen(["php-fpm8.2", "-F", "-y", os.path.join(work, "fpm.conf")] + (["-R"] if os.geteuid() == 0 else []),
                           stderr=subprocess.DEVNULL, env={"PATH": os.environ["PATH"]})
    for _ in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    fcgi = "root {w}/www; include {c}/fastcgi_params; fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name; fastcgi_pass unix:SOCK;".format(
        w=work, c=os.path.join(TARGET, "nginx/conf"))
    configs = [
        ("fastcgi_pass + php-fpm", fcgi),
        ("fephp_pass -> php-fpm, buffering on", "fephp_pass unix:SOCK;"),
        ("fephp_pass -> php-fpm, buffering off", "fephp_buffering off; fephp_pass unix:SOCK;"),
        ("fephp_pass embedded, buffering on", "fephp_pass embedded;"),
        ("fephp_pass embedded, buffering off", "fephp_buffering off; fephp_pass embedded;"),
    ]
    rows = []
    try:
        for name, loc in configs:
            rows.append(run(name, loc, work, sock))
            print(rows[-1], file=sys.stderr)
    finally:
        fpm.terminate(); fpm.wait()
        shutil.rmtree(work, ignore_errors=True)
    print(f"| configuration ({CLIENTS} clients × {SIZE_MB} MB at 2 MB/s) | first PHP done (s) | last PHP done (s) | hello during (ms) | clients done (s) | worker peak RSS (MB) | temp file |")
    print("|---|---|---|---|---|---|---|")
    for name, first, last, h, c, rss, spilled in rows:
        print(f"| {name} | {first:.2f} | {last:.2f} | {h:.1f} | {c:.1f} | {rss} | {'yes' if spilled else 'no'} |")

if __name__ == "__main__":
    main()
