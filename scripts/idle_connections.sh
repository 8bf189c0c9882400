#!/usr/bin/env bash
# Idle connections' memory (issue 14, "lean connections"): starts a server,
# opens N connections that each read the greeting and do one `ping` round
# trip (so every connection has read and written), then holds them idle and
# reports the server's RSS (VmRSS from /proc/PID/status) before and after.
#
# usage: scripts/idle_connections.sh [HERALD_BINARY] [N]
#   HERALD_BINARY defaults to target/release/herald, N to 10000.
# The client and the server each need N + a few file descriptors: the script
# raises its own soft limit (`ulimit -n`) to the hard limit.
set -euo pipefail
bin=${1:-target/release/herald}
n=${2:-10000}
ulimit -n "$(ulimit -Hn)"
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
extra=()
# Binaries before --max-connections accept any number of connections.
if "$bin" serve --help | grep -q -- --max-connections; then
    extra=(--max-connections $((n + 100)))
fi
"$bin" serve --listen "127.0.0.1:$port" --data "$dir/data" --http off \
    "${extra[@]}" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
done
sleep 0.5
before=$(rss)
python3 - "$port" "$n" "$pid" "$before" <<'PY'
import socket, sys, time
port, n, pid, before = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
socks = []
def read_line(s):
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit(f"connection {len(socks)} closed by the server: {data!r}")
        data += chunk
    return data
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    read_line(s)            # greeting
    s.sendall(b"ping\r\n")
    read_line(s)            # +OK pong
    socks.append(s)
time.sleep(1.0)
after = rss()
print(f"connections {n}: RSS before {before} KiB, after {after} KiB, "
      f"added {(after - before) / 1024:.1f} MiB, {(after - before) * 1024 / n:.0f} bytes per connection")
for s in socks:
    s.close()
PY
