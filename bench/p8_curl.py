# P8's curl row, run by p8_curl.sh inside its namespaces (see there).
import socket, subprocess, sys, time
v4 = socket.socket(socket.AF_INET); v4.bind(("127.0.0.1", 0)); v4.listen(64)
port = v4.getsockname()[1]
hole = socket.socket(socket.AF_INET6); hole.bind(("::1", port)); hole.listen(0)
fillers = []
for _ in range(8):  # fill the queue: SYNs to it are dropped from now on
    s = socket.socket(socket.AF_INET6); s.settimeout(0.1)
    try: s.connect(("::1", port)); fillers.append(s)
    except OSError: s.close()
for _ in range(int(sys.argv[1])):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "--connect-timeout", "5", "--max-time", "1", "-w", "%{time_connect}",
                          f"http://dual.test:{port}/"], capture_output=True, text=True).stdout
    print(f"curl (happy-eyeballs-timeout 200 ms, its default): time_connect {float(out)*1000:.1f} ms", flush=True)
    v4.settimeout(2); conn, _ = v4.accept(); conn.close()
