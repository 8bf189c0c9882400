"""A worker pool (needs a version-2 broker: groups, ack deadlines, nack,
dead letters; PROTOCOL.md section 12). Several workers join the group
"workers" on topic "jobs": each job goes to one of them. A job that fails
is given back with a delay and retried; after 3 deliveries it goes to
"jobs.dead". A worker that dies holding a job gives it back after `wait`.

    herald serve &
    python examples/worker_pool.py --workers 4 --jobs 40
"""

import argparse
import os
import random
import threading
import time

import herald


def worker(addr: str, n: int, done: threading.Event, stats: dict, lock: threading.Lock) -> None:
    with herald.Client(addr) as c:
        # A group member reconnects and rejoins by itself after a drop.
        jobs = c.subscribe("jobs", prefetch=2, group="workers", wait=30, backoff=[1, 5], max_deliveries=3)
        while not done.is_set():
            d = jobs.get(timeout=0.2)
            if d is None:
                continue
            if random.random() < 0.2:  # this job fails this time
                print(f"worker {n}: job {d.id} failed (delivery {d.deliveries}), giving it back")
                d.nack(delay=0.5)
                continue
            time.sleep(d.msg["seconds"])  # the work
            d.ack()
            with lock:
                stats[n] = stats.get(n, 0) + 1
            print(f"worker {n}: job {d.id} done")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default=os.environ.get("HERALD_ADDR", "127.0.0.1:8000"))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=40)
    args = parser.parse_args()

    with herald.Client(args.addr) as boss:
        boss.create("jobs")
        boss.create("jobs.dead")
        dead = boss.subscribe("jobs.dead")  # see what gave up
        # Join the group before publishing, so that every job is queued for it.
        boss.subscribe("jobs", group="workers", wait=30, backoff=[1, 5], max_deliveries=3)
        boss.unsubscribe("jobs")  # the group stays, with its queue

        done, lock, stats = threading.Event(), threading.Lock(), {}
        pool = [threading.Thread(target=worker, args=(args.addr, n, done, stats, lock)) for n in range(args.workers)]
        for t in pool:
            t.start()
        run = int(time.time())
        jobs = [{"id": f"job-{run}-{i}", "priority": i % 3, "msg": {"seconds": 0.05}} for i in range(args.jobs)]
        boss.publish_many("jobs", jobs)

        dead_letters = 0
        while True:
            with lock:
                if sum(stats.values()) + dead_letters >= args.jobs:
                    break
            d = dead.get(timeout=0.1)
            if d is not None:
                print(f"dead letter: {d.event['dead']['id']} after {d.event['dead']['deliveries']} deliveries")
                d.ack()
                dead_letters += 1
        done.set()
        for t in pool:
            t.join()
        print("jobs done per worker:", stats, "dead letters:", dead_letters)


if __name__ == "__main__":
    main()
