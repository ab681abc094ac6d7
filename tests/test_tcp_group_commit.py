"""Group commit in the TCP runtime: one fsync for every input that arrived during the previous
one, and no effect of a group (an ack, a reply) before its commit returned.

Each test runs one node (``NodeRuntime``, cluster of one, N=R=W=1) on a private event loop in
this process, bound to 127.0.0.1 port 0, with its store's ``commit`` wrapped so the test
decides when a commit may go ahead: what the node does while its disk is busy is then seen
step by step, with nothing timed. The SIGKILL tests of whole clusters are in
``tests/test_tcp_cluster.py``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import contextmanager

from dynamo_lab.node import NodeConfig
from dynamo_lab.storage import SqliteStore
from dynamo_lab.tcp.process import NodeOptions, NodeRuntime

QUIET = dict(gossip_interval_s=60.0, handoff_interval_s=60.0, anti_entropy_interval_s=60.0,
             rebalance_interval_s=60.0)


@contextmanager
def one_node(tmp_path):
    """Node A alone (its periodic work far away, so that only the test's requests write)."""
    loop = asyncio.new_event_loop()
    cfg = NodeConfig(n=1, r=1, w=1, request_timeout_s=0.5, **QUIET)
    opts = NodeOptions("A", str(tmp_path), members=["A"], config=cfg, cluster="gc",
                       secret="test-secret-0123456789abcdef", token="tok")
    runtime = NodeRuntime(opts)
    loop.run_until_complete(runtime.start(http=False))
    loop.run_until_complete(runtime.store_free())
    try:
        yield loop, runtime
    finally:
        loop.run_until_complete(runtime.close())
        loop.close()


class Gate:
    """Wraps ``store.commit``: each commit waits until the test opens the gate."""

    def __init__(self, store, fail: bool = False):
        self.real = store.commit
        self.store = store
        self.fail = fail
        self.entered = threading.Semaphore(0)     # released once per commit that started
        self.open = threading.Event()
        self.calls = 0
        store.commit = self

    def __call__(self) -> int:
        self.calls += 1
        self.entered.release()
        self.open.wait()
        if self.fail:
            self.fail = False
            self.store._conn.execute("ROLLBACK")
            self.store._group_writes = 0
            raise sqlite3.OperationalError("disk I/O error (injected by the test)")
        return self.real()

    async def started(self) -> None:
        """Until a commit is running (and held at the gate)."""
        await asyncio.get_running_loop().run_in_executor(None, self.entered.acquire)


async def turns(until, limit: int = 200) -> None:
    """Let the event loop run until ``until()`` holds (a bounded number of turns, no clock)."""
    for _ in range(limit):
        if until():
            return
        await asyncio.sleep(0)
    raise AssertionError("the event loop never got there")


def on_disk(runtime, key: str) -> list:
    """What another reader of the node's SQLite file sees: only what was committed."""
    with SqliteStore(runtime.opts.store_path) as reader:
        return [v.value for v in reader.get(key)]


def test_writes_that_arrive_during_a_commit_wait_and_are_committed_together(tmp_path):
    with one_node(tmp_path) as (loop, runtime):
        before = dict(runtime.commits)
        gate = Gate(runtime.store)

        async def scenario():
            first = asyncio.ensure_future(runtime.request("put", "k0", [0]))
            await gate.started()
            # The first put's write is being committed: its reply must not have left.
            assert not first.done() and on_disk(runtime, "k0") == []
            rest = [asyncio.ensure_future(runtime.request("put", f"k{i}", [i]))
                    for i in range(1, 6)]
            await turns(lambda: len(runtime._next_group) == 5)
            assert not any(f.done() for f in [first, *rest])
            assert all(on_disk(runtime, f"k{i}") == [] for i in range(6))
            gate.open.set()
            return await asyncio.gather(first, *rest)

        replies = loop.run_until_complete(scenario())
        assert all(r.ok for r in replies), replies
        assert gate.calls == 2, "one commit for the first put, one for the five that waited"
        assert runtime.commits["groups"] - before["groups"] == 2
        assert runtime.commits["writes"] - before["writes"] == 6
        assert runtime.commits["largest"] >= 5
        assert [on_disk(runtime, f"k{i}") for i in range(6)] == [[[i]] for i in range(6)]


def test_a_reply_leaves_only_after_the_commit_of_its_write_returned(tmp_path):
    with one_node(tmp_path) as (loop, runtime):
        gate = Gate(runtime.store)

        async def scenario():
            put = asyncio.ensure_future(runtime.request("put", "cart", ["book"]))
            await gate.started()
            # Later inputs of any kind wait too: a get cannot see the write before it is durable.
            get = asyncio.ensure_future(runtime.request("get", "cart"))
            await turns(lambda: len(runtime._next_group) == 1)
            assert not put.done() and not get.done()
            gate.open.set()
            return await put, await get

        put, get = loop.run_until_complete(scenario())
        assert put.ok and get.ok and get.values == (["book"],)
        assert on_disk(runtime, "cart") == [["book"]]


def test_a_group_that_wrote_nothing_needs_no_commit(tmp_path):
    with one_node(tmp_path) as (loop, runtime):
        assert loop.run_until_complete(runtime.request("put", "cart", ["book"])).ok
        loop.run_until_complete(runtime.store_free())
        gate = Gate(runtime.store)
        gate.open.set()
        reply = loop.run_until_complete(runtime.request("get", "cart"))
        assert reply.ok and reply.values == (["book"],)
        assert gate.calls == 0, "a read-only group answers without touching the disk"


def test_a_failed_commit_loses_its_group_answers_its_clients_and_restarts_the_node(tmp_path,
                                                                                 caplog):
    with one_node(tmp_path) as (loop, runtime):
        assert loop.run_until_complete(runtime.request("put", "kept", [1])).ok
        loop.run_until_complete(runtime.store_free())
        generation = runtime.node.membership.mine.generation
        gate = Gate(runtime.store, fail=True)
        gate.open.set()
        reply = loop.run_until_complete(runtime.request("put", "lost", [2]))
        assert not reply.ok and reply.may_have_applied and "commit failed" in reply.error
        assert runtime.commits["failed"] == 1 and runtime.errors == 1
        assert "a commit failed" in caplog.text
        # The node restarted over its store: a new generation, nothing of the lost group.
        assert runtime.node.membership.mine.generation == generation + 1
        assert on_disk(runtime, "lost") == [] and on_disk(runtime, "kept") == [[1]]
        again = loop.run_until_complete(runtime.request("put", "after", [3]))
        assert again.ok
        assert loop.run_until_complete(runtime.request("get", "kept")).values == ([1],)
        assert on_disk(runtime, "after") == [[3]]


def test_close_commits_the_last_group(tmp_path):
    with one_node(tmp_path) as (loop, runtime):
        assert loop.run_until_complete(runtime.request("put", "cart", ["book"])).ok
        runtime.store.put("late", runtime.store.get("cart"))     # written, not yet committed
        assert runtime.store.pending
    with SqliteStore(tmp_path / "A.sqlite3") as reader:
        assert [v.value for v in reader.get("late")] == [["book"]]
