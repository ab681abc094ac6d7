"""Lab 3's scenarios: the stories the notebook shows and the checks replay with a student's
parts (each takes ``parts``, a :class:`~dynamo_lab.Parts`, None for the reference).

* :func:`one_put_story`: one put while a replica is down (the stand-in, its hint, the W-th
  acknowledgement, the answer), then the restart and the handoff; :func:`one_put_moments`
  names the moments to step through;
* :func:`seeds_story`: the lecture's example (its slides "Sloppy Quorums" and "Hinted
  Handoff"): C and D fail, a key is written to E and F instead, C and D recover, a read
  served by C and D is stale although R + W > N, until hinted handoff ends it;
* :func:`lost_write_story`: hints forgotten before delivery, then a permanent failure;
* :func:`stale_reads_after_recovery`: how often the lecture's read is stale, over seeds.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from ...cluster import SimCluster
from ...errors import QuorumError
from ...grading.failures import STATE

#: The lecture's example: six nodes A..F; with 32 tokens a node, the key below has the
#: preference list A, C, D, and the walk goes on to E, then F.
STORY_NODES = ["A", "B", "C", "D", "E", "F"]
STORY_VNODES = 32
STORY_KEY = "cart:sybil"
#: The seed of the lecture's story: with it, D's answer reaches C before A's does.
STORY_SEED = 1


class _Log(list):
    """A story's log that also marks, in ``marks``, how long the trace was at each step."""

    def __init__(self, cluster: SimCluster, marks: Optional[list]):
        super().__init__()
        self.cluster, self.marks = cluster, marks

    def append(self, entry) -> None:
        super().append(entry)
        if self.marks is not None:
            self.marks.append((len(self.cluster.sim.trace.events), entry[0]))


def _values(result) -> list:
    return sorted(json.dumps(v, sort_keys=True) for v in result.values)


def _held(cluster: SimCluster, key: str) -> dict[str, list[str]]:
    """What each node keeps of ``key``: its own versions, and its hints (with the node each
    is meant for)."""
    out = {}
    for name in cluster.nodes:
        store = cluster.stores[name]
        mine = [json.dumps(v.value) for v in store.get(key)]
        hinted = [f"{json.dumps(v.value)} (hint for {h})" for h in store.hinted_nodes()
                  for v in store.get_hint(h, key)]
        if mine or hinted:
            out[name] = sorted(mine) + sorted(hinted)
    return out


def seeds_story(parts=None, seed: int = STORY_SEED, marks: Optional[list] = None
                ) -> tuple[list[tuple[str, Any]], SimCluster]:
    """The lecture's sloppy-quorum example on a cluster using ``parts``. Returns the log (step,
    what was seen) and the cluster; ``marks``, when given, gets (how many trace events there
    were, the step) as each step is logged.

    N=3, R=W=2 (R + W > N). Read repair and anti-entropy are off, so that what ends the stale
    read is hinted handoff alone (either would also repair C and D)."""
    cluster = SimCluster(nodes=STORY_NODES, n=3, r=2, w=2, vnodes=STORY_VNODES, seed=seed,
                         parts=parts, read_repair=False, anti_entropy=False)
    key, client = STORY_KEY, cluster.client("sybil")
    cluster.run_for(5)                       # the cluster has been up a while: gossip settled
    log = _Log(cluster, marks)
    log.append((f"the preference list of {key!r} (N=3), then the rest of the walk",
                list(cluster.ring().successors(key))))
    STATE.working_on = "the first write, through A, with every node up"
    first = client.put(key, ["book"], via="A")
    log.append(("sybil writes ['book'] through A; acknowledged by", list(first.replies)))
    cluster.run_for(1)
    log.append(("who holds the key", _held(cluster, key)))
    cluster.crash("C")
    cluster.crash("D")
    cluster.run_for(6)                       # long enough for A to suspect C and D
    STATE.working_on = "the second write, through A, with C and D down"
    second = client.put(key, ["book", "pen"], context=first.context, via="A")
    log.append(("C and D are down; sybil writes ['book', 'pen'] through A; acknowledged by",
                list(second.replies)))
    cluster.run_for(0.2)
    log.append(("who holds the key (E and F keep hints)", _held(cluster, key)))
    cluster.restart("C")
    cluster.restart("D")
    STATE.working_on = "the read through C, right after C and D are back"
    stale = client.get(key, via="C")
    log.append(("C and D are back; a read through C (R=2) is answered by",
                list(stale.replies)))
    log.append(("... and returns", _values(stale)))
    log.append(("hints still held", {n: c for n, c in cluster.hints().items() if c}))
    cluster.run_for(5)                       # gossip tells E and F that C and D are up
    log.append(("after 5 s: hints still held", {n: c for n, c in cluster.hints().items() if c}))
    log.append(("after 5 s: who holds the key", _held(cluster, key)))
    STATE.working_on = "the read through C after hinted handoff"
    fresh = client.get(key, via="C")
    log.append(("a read through C now is answered by", list(fresh.replies)))
    log.append(("... and returns", _values(fresh)))
    log.append(("consistency checker", [str(v) for v in cluster.check()]))
    return list(log), cluster


def stale_reads_after_recovery(parts=None, seeds=range(1, 101)) -> tuple[int, int]:
    """The lecture's read (through C, right after C and D are back), over many seeds: how
    many of them were stale. Returns ``(stale, runs)``."""
    stale = 0
    runs = 0
    for seed in seeds:
        log, _ = seeds_story(parts, seed)
        first = next(v for step, v in log if step == "... and returns")
        stale += first == ['["book"]']
        runs += 1
    return stale, runs


def one_put_story(parts=None, seed: int = 3) -> tuple[SimCluster, str]:
    """One put while C, a replica of the key, is down and suspected; then C's restart and the
    handoff. 5 nodes, N=3, W=2. Returns the cluster and the key."""
    cluster = SimCluster(nodes=5, n=3, r=2, w=2, seed=seed, parts=parts, anti_entropy=False)
    key = next(k for k in (f"cart:{i}" for i in range(200))
               if cluster.preference_list(k)[1] == "C")
    coordinator = cluster.preference_list(key)[0]
    cluster.run_for(5)                       # the cluster has been up a while: gossip settled
    cluster.crash("C")
    cluster.run_for(6)
    cluster.client("alice").put(key, ["book"], via=coordinator)
    cluster.run_for(1)
    cluster.restart("C")
    cluster.run_for(4)
    return cluster, key


def one_put_moments(cluster: SimCluster, key: str) -> list[tuple[str, float, str]]:
    """The moments of :func:`one_put_story` to step through: ``(label, time, caption)``, each
    time the end of the window to show."""
    from ...viz.messages import match_messages
    events = cluster.sim.trace.events
    msgs = [m for m in match_messages(events) if key in _keys(m.send.msg)]
    put = next(m for m in msgs if m.kind == "ClientPut")
    hinted = next(m for m in msgs if m.kind == "ReplicaPut" and m.send.msg.hint is not None)
    coordinator = put.dst
    acks = [m for m in msgs if m.kind == "ReplicaPutAck" and m.dst == coordinator
            and m.end is not None]
    needed = cluster.config.w - 1                      # the coordinator's own write counts
    reply = next(m for m in msgs if m.kind == "ClientReply")
    restart = next(e for e in events if e.kind == "restart")
    handoff = next(m for m in msgs if m.kind == "HandoffPut")
    ack = next(m for m in msgs if m.kind == "HandoffAck")
    # Each moment is the end of the window shown: a message is drawn when it was sent by then,
    # so "just before" a send is its time less a hair.
    before, after = -1e-9, 1e-9
    return [
        ("the put arrives", put.end.time + before,
         f"The client's put reaches {coordinator}, the first node of the key's preference list. "
         f"{coordinator} believes C down."),
        ("the stand-in and its hint", hinted.send.time + after,
         f"{coordinator} writes locally and sends the version to the first N healthy nodes: "
         f"{hinted.dst} stands in for C and gets the write with a hint naming C."),
        ("the W-th acknowledgement", acks[needed - 1].end.time + before,
         f"{coordinator}'s own write is one acknowledgement; the first from another replica "
         f"({acks[needed - 1].src}) makes W={cluster.config.w}."),
        ("the answer", reply.send.time + after,
         f"{coordinator} answers the client at once; the last acknowledgement is not awaited."),
        ("C restarts", restart.time + after,
         "C comes back (its store survived the crash); it still misses the write."),
        ("the handoff", handoff.send.time + after,
         f"{handoff.src} learns that C is up and hands the hinted replica back to C."),
        ("the hint is forgotten", ack.send.time + after,
         f"C acknowledged exactly what {handoff.src} holds: {handoff.src} deletes the hint when "
         f"the acknowledgement arrives."),
    ]


def _keys(msg) -> list[str]:
    from ...viz.messages import message_keys
    return message_keys(msg)


def lost_write_story(parts=None, seed: int = 2) -> tuple[list[tuple[str, Any]], SimCluster]:
    """Why a hint is kept until it is acknowledged. The lecture's cluster: C and D down, a
    write lands on A, E and F; C and D come back, but what E and F hand them is lost on the way
    (a partition); then A fails for good (its disk is gone). With hints kept until acknowledged,
    C and D get the write once the network heals; with hints forgotten on send, the write is
    lost, and the consistency checker says so. Anti-entropy and read repair are off (each would
    save the write from A's copy while A lives)."""
    cluster = SimCluster(nodes=STORY_NODES, n=3, r=2, w=2, vnodes=STORY_VNODES, seed=seed,
                         parts=parts, read_repair=False, anti_entropy=False)
    key, client = STORY_KEY, cluster.client("sybil")
    cluster.run_for(5)                       # the cluster has been up a while: gossip settled
    log: list[tuple[str, Any]] = []
    cluster.crash("C")
    cluster.crash("D")
    cluster.run_for(6)
    res = client.put(key, ["book"], via="A")
    log.append(("C and D are down: the write is acknowledged by", list(res.replies)))
    cluster.run_for(0.5)
    cluster.partition({"E", "F"}, {"C", "D"}, one_way=True)
    cluster.restart("C")
    cluster.restart("D")
    cluster.run_for(10)
    log.append(("C and D are back, E and F cannot reach them: hints held",
                {n: c for n, c in cluster.hints().items() if c}))
    cluster.crash("A")
    cluster.wipe("A")
    cluster.heal()
    cluster.run_for(10)
    log.append(("A's disk is gone, the network healed; 10 s later, who holds the key",
                _held(cluster, key)))
    cluster.restart("A")
    try:
        read = client.get(key, via="C")
        log.append(("a read through C returns", _values(read)))
    except QuorumError as exc:
        log.append(("a read through C fails", str(exc)))
    lost = [str(v) for v in cluster.check() if v.check == "acknowledged-write-survives"]
    log.append(("consistency checker: acknowledged writes lost", lost))
    return log, cluster
