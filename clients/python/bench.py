"""Throughput of the Python client: publishing and acknowledging.

    python bench.py --spawn                    # a temporary broker (target/release/herald)
    python bench.py --addr 127.0.0.1:8000      # a broker you started
    python bench.py --spawn --redis 127.0.0.1:6379   # and redis-py on the same machine

For each client (blocking ``herald.Client`` and ``herald.aio.Client``) and
each run (``--runs``, default 3; the median is reported):

- publish: ``publish_many`` of ``--events`` events (default 100,000) whose
  ``msg`` is ``--size`` bytes (default 100), to a topic with one durable
  subscriber, so every event is stored; timed until the last reply.
- ack: a subscriber at ``--prefetch`` (default 256) consumes those events
  and calls ``ack()`` on each; timed from the first delivery asked for to
  the ``ping`` after the last ack (so every ack has been answered).

With ``--redis HOST:PORT`` (needs ``pip install redis``) the same is done
with redis-py: ``XADD`` pipelined in chunks of the same size, and
``XREADGROUP COUNT <prefetch>`` with pipelined ``XACK``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).parent / "src"))

import herald  # noqa: E402
import herald.aio  # noqa: E402


def events(run: str, n: int, size: int) -> List[dict]:
    msg = "x" * size
    return [{"id": f"{run}-{i}", "priority": i % 10, "msg": msg} for i in range(n)]


# --- herald, blocking ---------------------------------------------------------------


def blocking_run(addr: str, n: int, size: int, prefetch: int) -> Dict[str, float]:
    run = f"b{time.time_ns()}"
    topic = f"bench-{run}"
    evs = events(run, n, size)
    with herald.Client(addr) as producer, herald.Client(addr, name=f"sub-{run}") as consumer:
        consumer.create(topic)
        sub = consumer.subscribe(topic, prefetch=prefetch)
        started = time.perf_counter()
        results = producer.publish_many(topic, evs)
        published = time.perf_counter() - started
        assert results is not None and len(results) == n
        started = time.perf_counter()
        count = 0
        for d in sub:
            d.ack()
            count += 1
            if count == n:
                break
        consumer.ping()
        acked = time.perf_counter() - started
        consumer.unsubscribe(topic)
    return {"publish": n / published, "ack": n / acked}


# --- herald, asyncio ----------------------------------------------------------------


async def aio_run_async(addr: str, n: int, size: int, prefetch: int) -> Dict[str, float]:
    run = f"a{time.time_ns()}"
    topic = f"bench-{run}"
    evs = events(run, n, size)
    async with herald.aio.Client(addr) as producer, herald.aio.Client(addr, name=f"sub-{run}") as consumer:
        await consumer.create(topic)
        sub = await consumer.subscribe(topic, prefetch=prefetch)
        started = time.perf_counter()
        results = await producer.publish_many(topic, evs)
        published = time.perf_counter() - started
        assert results is not None and len(results) == n
        started = time.perf_counter()
        count = 0
        async for d in sub:
            await d.ack()
            count += 1
            if count == n:
                break
        await consumer.ping()
        acked = time.perf_counter() - started
        await consumer.unsubscribe(topic)
    return {"publish": n / published, "ack": n / acked}


def aio_run(addr: str, n: int, size: int, prefetch: int) -> Dict[str, float]:
    return asyncio.run(aio_run_async(addr, n, size, prefetch))


# --- redis-py -----------------------------------------------------------------------


def redis_run(addr: str, n: int, size: int, prefetch: int) -> Dict[str, float]:
    import redis  # type: ignore[import-not-found]

    host, port = addr.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    stream = f"bench-{time.time_ns()}"
    r.xgroup_create(stream, "g", id="0", mkstream=True)
    evs = events(stream, n, size)
    chunk = 2048  # as herald's publish_many
    started = time.perf_counter()
    for i in range(0, n, chunk):
        pipe = r.pipeline(transaction=False)
        for e in evs[i : i + chunk]:
            pipe.xadd(stream, {"id": e["id"], "priority": e["priority"], "msg": e["msg"]})
        pipe.execute()
    published = time.perf_counter() - started
    started = time.perf_counter()
    count = 0
    while count < n:
        batch = r.xreadgroup("g", "c", {stream: ">"}, count=prefetch)
        ids = [entry_id for _, entries in batch for entry_id, _ in entries]
        pipe = r.pipeline(transaction=False)
        for entry_id in ids:
            pipe.xack(stream, "g", entry_id)
        pipe.execute()
        count += len(ids)
    acked = time.perf_counter() - started
    r.delete(stream)
    return {"publish": n / published, "ack": n / acked}


# --- running ------------------------------------------------------------------------


def spawn(fsync: str) -> "tuple[subprocess.Popen, str, str]":
    root = Path(__file__).resolve().parents[2]
    binary = os.environ.get("HERALD_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR") or root / "target") / "release" / "herald"
    )
    data = tempfile.mkdtemp(prefix="herald-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    env["HERALD_LOG"] = "info"
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data", data, "--fsync", fsync],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    addr: Optional[str] = None
    for line in proc.stderr:
        if "listening" in line:
            addr = next(w[5:] for w in line.split() if w.startswith("addr="))
            break
    if addr is None:
        raise SystemExit("the broker did not start")
    # Keep reading its log so that it never blocks on a full pipe.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    return proc, addr, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--addr", default=None)
    parser.add_argument("--spawn", action="store_true", help="start target/release/herald on a temp dir")
    parser.add_argument("--fsync", default="always", choices=["always", "interval"])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--prefetch", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", default="blocking,aio", help="any of blocking,aio")
    parser.add_argument("--redis", default=None, metavar="HOST:PORT", help="also measure redis-py")
    args = parser.parse_args()

    proc = None
    data = None
    addr = args.addr or "127.0.0.1:8000"
    if args.spawn:
        proc, addr, data = spawn(args.fsync)
    try:
        benches: Dict[str, Callable[[str, int, int, int], Dict[str, float]]] = {}
        for name in args.clients.split(","):
            benches[name] = {"blocking": blocking_run, "aio": aio_run}[name]
        targets = {name: addr for name in benches}
        if args.redis:
            benches["redis-py"] = redis_run
            targets["redis-py"] = args.redis
        load = os.getloadavg()
        print(
            f"{args.events} events of {args.size} B msg, prefetch {args.prefetch}, {args.runs} runs, "
            f"python {sys.version.split()[0]}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
            + (f", spawned broker --fsync {args.fsync}" if args.spawn else "")
        )
        print(f"{'client':<10} {'publish/s median (min-max)':>32} {'ack/s median (min-max)':>32}")
        for name, bench in benches.items():
            runs = [bench(targets[name], args.events, args.size, args.prefetch) for _ in range(args.runs)]
            cells = []
            for key in ("publish", "ack"):
                values = sorted(r[key] for r in runs)
                cells.append(f"{statistics.median(values):>10,.0f} ({values[0]:,.0f}-{values[-1]:,.0f})")
            print(f"{name:<10} {cells[0]:>32} {cells[1]:>32}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
        if data is not None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
