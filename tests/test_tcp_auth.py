"""Authenticated peers on real node processes (issue 8, item 3).

Before: the peer port accepted any connection whose hello named the cluster id (visible in
``ps``); a forged ``ReplicaPut`` was stored and served, and a forged ``Gossip`` saying "C has
left" with a huge generation evicted C for good (its restart then "did not converge"). Now a
peer must prove it holds the cluster's secret, which is on no command line, and even a peer
that holds it cannot raise another node's generation.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dynamo_lab.errors import ProtocolError
from dynamo_lab.codec import dumps
from dynamo_lab.messages import Gossip, MemberState, ReplicaPut
from dynamo_lab.tcp.cluster import TcpCluster
from dynamo_lab.tcp.framing import dial_handshake, encode_frame, split_address

from test_tcp_cluster import FAST, assert_all_stopped, eventually, started


def _send_as(address: str, cluster: str, secret: str, as_node: str, frames: list) -> bool:
    """Connect to a node's peer port as ``as_node`` holding ``secret``, send ``frames`` and
    return whether the handshake was accepted (the connection is then closed)."""
    return asyncio.run(asyncio.wait_for(_talk(address, cluster, secret, as_node, frames), 10))


async def _talk(address: str, cluster: str, secret: str, as_node: str, frames: list) -> bool:
    host, port = split_address(address)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        try:
            await dial_handshake(reader, writer, node=as_node, address="127.0.0.1:9",
                                 cluster=cluster, secret=secret)
        except ProtocolError:
            return False
        writer.writelines(frames)
        await writer.drain()
        return True
    finally:
        writer.close()


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
def test_forged_frames_are_refused_and_a_forged_leave_cannot_evict_a_node(tmp_path):
    with TcpCluster(nodes=3, seed=5, data_dir=str(tmp_path), **FAST) as cluster:
        pids = started(cluster)
        for name, pid in cluster.pids.items():
            line = _cmdline(pid)
            options = Path(line.split("\0")[line.split("\0").index("--options") + 1]).read_text()
            assert cluster.cluster_id in options         # the id is public...
            for secret in (cluster.secret, cluster.token, cluster.config.cluster_key):
                assert secret not in line and secret not in options   # ...not the secrets
        a = cluster._procs["A"].address
        cluster.client("x").put("real", ["book"], via="A")
        versions = tuple(cluster.replicas("real")["A"] or cluster.holders("real")["B"])
        forged_put = encode_frame(dumps(ReplicaPut("r1", "forged", versions)))

        # Knowing the cluster id, as anyone on the machine does, is not enough.
        ok = _send_as(a, cluster.cluster_id, "guessed", "B", [forged_put])
        assert not ok
        assert "does not prove it holds the cluster's secret" in cluster.log_file("A").read_text()
        assert cluster.holders("forged") == {}

        # A peer holding the secret says C left, with a generation C can never reach by
        # restarting. A's view of C must not change, and C's restart must converge.
        c_gen = cluster.status("C")["generation"]
        forged_leave = encode_frame(dumps(Gossip(
            (MemberState("C", 10**9, 0, "left", (), "127.0.0.1:9"),), reply=False)))
        assert _send_as(a, cluster.cluster_id, cluster.secret, "B", [forged_leave])
        marker = encode_frame(dumps(ReplicaPut("r2", "marker", versions)))
        assert _send_as(a, cluster.cluster_id, cluster.secret, "B", [marker])
        eventually(lambda: "A" in cluster.holders("marker"), what="A to read the next frame")
        member = cluster.status("A")["members"]["C"]
        assert member["status"] == "up" and member["generation"] == c_gen
        cluster.crash("C")
        cluster.restart("C")                               # waits for convergence, or raises
        member = cluster.status("A")["members"]["C"]
        assert member["status"] == "up" and member["generation"] == c_gen + 1
        pids += started(cluster)
    assert_all_stopped(pids)
