"""The Dynamo / Bayou lecture's example, step by step, on a real :class:`BayouCluster`.

Servers P (the primary), A and B. Clients write w(X,4) at P when its clock reads 1 and w(Y,8)
at 7, w(Z,8) at B at 5, w(X,3) and w(Y,4) at A at 7 and 12. Then, as on the slides:

1. anti-entropy session A & B;
2. the primary commits its entries (it holds only its own two);
3. a client deletes Y at B: stamped ``max(clock, max(TS) + 1)`` = 13, B's clock reading 12;
4. anti-entropy session P & B ("the primary respects causality");
5. the primary commits its entries (now all six);
6. more sessions, without further writes, until every log reads
   1:1:P w(X,4), 2:7:P w(Y,8), 3:5:B w(Z,8), 4:7:A w(X,3), 5:12:A w(Y,4), 6:13:B D(Y).

Clocks tick once a second of virtual time and messages take 1 ms, so each clock reading is the
virtual second in which the write arrives. :func:`steps` runs it and yields each step's tables
(what Lab 7's widget steps through); ``tests/test_bayou_lecture.py`` compares them with the
slides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from ..faults import FaultConfig
from .cluster import BayouCluster
from .server import Parts
from .tables import Table
from .writes import Delete, Put

SERVERS = ("P", "A", "B")
WRITES = (            # (clock reading, server, operation): the slides' first five writes
    (1, "P", Put("X", 4)),
    (5, "B", Put("Z", 8)),
    (7, "P", Put("Y", 8)),
    (7, "A", Put("X", 3)),
    (12, "A", Put("Y", 4)),
)


@dataclass(frozen=True)
class Step:
    title: str                                  # the slide's title
    run: Callable[[BayouCluster], None]


def _writes(c: BayouCluster) -> None:
    for clock, server, op in WRITES:
        c.run_until(clock + 0.2)               # a clock tick of 1 s: arrives while it reads `clock`
        if c.write(server, op) is None:
            raise RuntimeError(f"{server} did not accept {op}")


def _session(a: str, b: str) -> Callable[[BayouCluster], None]:
    def run(c: BayouCluster) -> None:
        if not c.session(a, b):
            raise RuntimeError(f"session {a} & {b} did not finish")
    return run


def _delete_y_at_b(c: BayouCluster) -> None:
    c.write("B", Delete("Y"))


def _more_sessions(c: BayouCluster) -> None:
    _session("P", "A")(c)
    _session("A", "B")(c)


STEPS = (
    Step("Bayou Writes", _writes),
    Step("Anti-Entropy Session A & B", _session("A", "B")),
    Step("Primary commits its entries", lambda c: c.commit()),
    Step("Write after anti-entropy session: D(Y) at B", _delete_y_at_b),
    Step("Anti-Entropy Session P & B", _session("P", "B")),
    Step("Primary commits its entries (again)", lambda c: c.commit()),
    Step("After a number of commits and anti-entropy sessions", _more_sessions),
)


def cluster(seed: int = 0, parts: Parts | None = None) -> BayouCluster:
    """The lecture's three servers: no timers, everything on demand, 1 ms links; ``parts``
    swaps a technique in every server (Lab 7)."""
    return BayouCluster(SERVERS, primary="P", seed=seed, parts=parts,
                        faults=FaultConfig(latency="constant", latency_ms=1.0))


def steps(c: BayouCluster | None = None) -> Iterator[tuple[Step, dict[str, Table]]]:
    """Run the example; after each step yield it with every server's table."""
    c = c or cluster()
    for step in STEPS:
        step.run(c)
        yield step, c.tables()
