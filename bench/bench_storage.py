"""Puts and gets per second for MemoryStore and SqliteStore (durable: WAL, synchronous=FULL).

Each key holds 1 to 3 siblings (a cart-like JSON value with its vector clock); every put is its
own committed transaction, as a node does it. The SQLite figure for puts is bounded by fsync,
so it says more about the disk than about the code. Run: ``python -m bench`` or
``python bench/bench_storage.py``.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from dynamo_lab.storage import MemoryStore, SqliteStore, Store
from dynamo_lab.vclock import VectorClock
from dynamo_lab.versions import Versioned

SEED = 2007
OPS = 3000
#: Stop a phase early if it runs this long (slow disks: a FULL-sync commit can take 10 ms).
PHASE_CAP_S = 6.0


def _workload(ops: int, seed: int) -> list[tuple[str, list[Versioned]]]:
    rng = random.Random(seed)
    work = []
    for i in range(ops):
        siblings = []
        for s in range(rng.randint(1, 3)):
            clock = VectorClock({node: (rng.randint(1, 9), 1000.0 + i)
                                 for node in rng.sample(["A", "B", "C", "D"], 2)})
            cart = {"items": [f"item-{rng.randrange(10_000)}" for _ in range(rng.randint(1, 5))],
                    "updated_by": f"client-{s}"}
            siblings.append(Versioned(cart, clock, deleted=(rng.random() < 0.05)))
        work.append((f"cart:{rng.randrange(ops // 2)}", siblings))
    return work


def _rate(store: Store, work: list[tuple[str, list[Versioned]]],
          op: str) -> tuple[int, float]:
    done, start = 0, time.perf_counter()
    for key, versions in work:
        if op == "put":
            store.put(key, versions)
        else:
            store.get(key)
        done += 1
        if time.perf_counter() - start > PHASE_CAP_S:
            break
    return done, time.perf_counter() - start


def _bench(name: str, store: Store, work: list[tuple[str, list[Versioned]]]) -> None:
    with store:
        puts, put_s = _rate(store, work, "put")
        gets, get_s = _rate(store, work, "get")
        print(f"  {name:<32} put {puts / put_s:>10,.0f}/s ({puts} ops)   "
              f"get {gets / get_s:>10,.0f}/s ({gets} ops)   keys held {len(store)}")


def main() -> None:
    work = _workload(OPS, SEED)
    siblings = sum(len(v) for _, v in work) / len(work)
    print(f"storage: seed={SEED} ops={OPS} mean siblings/key={siblings:.2f} "
          f"(each phase capped at {PHASE_CAP_S:.0f} s)")
    _bench("MemoryStore", MemoryStore(), work)
    with tempfile.TemporaryDirectory(prefix="dynamo-lab-bench-") as tmp:
        _bench("SqliteStore (WAL, sync=FULL)", SqliteStore(Path(tmp) / "A.db"), work)


if __name__ == "__main__":
    main()
