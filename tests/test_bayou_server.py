"""The Bayou server's techniques, one by one, and together on real servers in the simulator."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from dynamo_lab.bayou import (Add, BayouCluster, BayouStore, Book, Commit, Delete, Put, Server,
                              ServerConfig, Write, new_stamp)
from dynamo_lab.bayou import anti_entropy, log as log_order
from dynamo_lab.bayou.database import MERGED, UPDATED, execute, replay, undo
from dynamo_lab.bayou.messages import (ClientWrite, CommitNow, SessionReply, StartSession,
                                       WriteAccepted)
from dynamo_lab.bayou.truncation import truncate
from dynamo_lab.errors import ProtocolError
from dynamo_lab.faults import FaultConfig
from dynamo_lab.messages import Note, Send

LINK = FaultConfig(latency="constant", latency_ms=1.0)


def w(stamp, server, op=None, csn=None):
    return Write(stamp, server, op or Put("k", stamp), csn)


# -- the pure parts -------------------------------------------------------------------------------

@pytest.mark.parametrize("clock,vector,stamp", [
    (12, {"P": 7, "A": 12, "B": 5}, 13),        # the lecture's D(Y): max(12, 12 + 1)
    (20, {"P": 7, "A": 12}, 20),                # the clock is ahead: the clock
    (0, {}, 1),                                 # nothing seen, clock at 0: still above 0
    (5, {"B": 5}, 6),                           # its own last write was stamped 5
])
def test_the_stamp_rule(clock, vector, stamp):
    assert new_stamp(clock, vector) == stamp


def test_log_order_committed_by_csn_then_tentative_by_stamp_then_server():
    log = [w(7, "P", csn=1), w(1, "P", csn=2), w(5, "B"), w(7, "A"), w(7, "P"), w(12, "A")]
    assert log_order.in_log_order(log)
    assert log_order.committed_count(log) == 2
    assert log_order.position(log, w(3, "C", csn=3)) == 2         # after CSN 2, before ∞:5:B
    assert log_order.position(log, w(6, "C")) == 3
    assert log_order.position(log, w(7, "B")) == 4                # 7:A < 7:B < 7:P
    assert log_order.position(log, w(1, "C")) == 2                # below every tentative one
    assert not log_order.in_log_order([w(5, "B"), w(1, "P", csn=1)])
    assert not log_order.in_log_order([w(1, "P", csn=1), w(2, "P", csn=3)])


def test_the_sender_sends_exactly_what_the_receiver_lacks_in_log_order():
    log = [w(1, "P", csn=1), w(7, "P", csn=2), w(5, "B"), w(7, "A"), w(12, "A"), w(13, "B")]
    # the receiver holds A's writes up to 12 and B's up to 5, nothing committed
    items = anti_entropy.writes_to_send(log, {"P": 0, "A": 12, "B": 5}, 0)
    assert items == (log[0], log[1], log[5])
    # it holds P's two as tentative: commit notices only
    items = anti_entropy.writes_to_send(log, {"P": 7, "A": 12, "B": 5}, 0)
    assert items == (Commit(1, "P", 1), Commit(7, "P", 2), log[5])
    assert anti_entropy.writes_to_send(log, {"P": 7, "A": 12, "B": 13}, 2) == ()


def test_the_primary_commits_in_its_log_order():
    log = [w(1, "P", csn=1), w(5, "B"), w(7, "A"), w(12, "A")]
    assert anti_entropy.commit(log, 1) == (Commit(5, "B", 2), Commit(7, "A", 3),
                                           Commit(12, "A", 4))
    assert anti_entropy.commit(log[:1], 1) == ()


def test_a_booking_runs_its_dependency_check_and_merge_procedure():
    book = Book("room", "mon-10", "bob", ("mon-11", "tue-10"))
    db = {"room@mon-10": "alice"}
    rec, outcome = execute(w(2, "B", book), db)
    assert outcome == (MERGED, (("room@mon-11", "bob"),))          # the first free alternative
    assert db == {"room@mon-10": "alice", "room@mon-11": "bob"}
    undo(db, rec)
    assert db == {"room@mon-10": "alice"}
    _, outcome = execute(w(3, "C", Book("room", "mon-10", "carol")), db)
    assert outcome == (MERGED, (("unbooked", ["carol:room@mon-10"]),))   # the paper's error log
    _, outcome = execute(w(4, "C", Book("room", "wed-9", "dan")), db)
    assert outcome[0] == UPDATED


def test_undo_restores_every_kind_of_change():
    db = {"X": 1, "cart": ["a"]}
    for op in (Put("X", 2), Put("Y", 3), Delete("X"), Add("cart", "b"), Add("new", "z")):
        before = dict(db)
        rec, _ = execute(w(1, "A", op), db)
        undo(db, rec)
        assert db == before, op


def test_truncation_keeps_a_checkpoint_omitted_vector_and_osn():
    log = [w(1, "P", Put("X", 1), csn=1), w(4, "A", Put("Y", 2), csn=2), w(3, "B", Put("X", 3))]
    new_log, cp, omitted, osn = truncate(log, {}, {}, 0, keep=0)
    assert new_log == log[2:] and cp == {"X": 1, "Y": 2} and omitted == {"P": 1, "A": 4}
    assert osn == 2
    assert replay(cp, new_log) == replay({}, log)
    assert truncate(log, {}, {}, 0, keep=5)[3] == 0


# -- one server, one input at a time -----------------------------------------------------------------

def fresh(server_id="A", config=None):
    s = Server(server_id, ["P", "A", "B"], BayouStore(), random.Random(0), config,
               primary="P")
    assert s.start(0.0) == []
    return s


def test_a_client_write_is_stamped_logged_applied_and_acknowledged():
    s = fresh()
    effects = s.on_message("client", ClientWrite("w1", Put("X", 3)), 7.4)
    assert effects == [Note("accepted ∞:7:A w(X,3) (clock 7)"),
                       Send("client", WriteAccepted("w1", 7, "A"))]
    assert s.log == [Write(7, "A", Put("X", 3))] and s.db == {"X": 3}
    assert s.vector == {"P": 0, "A": 7, "B": 0}


def test_a_session_reply_that_would_skip_a_csn_is_refused_from_there_on():
    s = fresh()
    reply = SessionReply("s", (Write(1, "P", Put("X", 1), 1), Write(3, "P", Put("X", 3), 3),
                               Write(4, "P", Put("Y", 4))))
    effects = s.on_message("P", reply, 1.0)
    assert [w.label() for w in s.log] == ["1:1:P"]                 # nothing after the gap
    assert s.stats["refused"] == 1
    assert any("CSN 3 after 1" in e.text for e in effects if isinstance(e, Note))


def test_a_commit_notice_for_a_write_not_held_is_refused():
    s = fresh()
    s.on_message("P", SessionReply("s", (Commit(5, "B", 1),)), 1.0)
    assert s.log == [] and s.stats["refused"] == 1


def test_unknown_messages_and_misuse_raise():
    s = fresh()
    with pytest.raises(ProtocolError):
        s.on_message("x", "hello", 0.0)
    with pytest.raises(ProtocolError, match="only the primary commits"):
        s.on_message("operator", CommitNow(), 0.0)
    with pytest.raises(ProtocolError):
        s.on_message("operator", StartSession("A"), 0.0)
    with pytest.raises(ProtocolError):
        s.on_timer(CommitNow(), 0.0)


# -- servers together ------------------------------------------------------------------------------

def test_meeting_room_the_write_that_sorts_first_keeps_the_slot_everywhere():
    c = BayouCluster(["P", "A", "B"], seed=1, faults=LINK)
    c.partition({"A"}, {"P", "B"})
    c.run_until(1.0)
    c.write("A", Book("room", "mon-10", "alice", ("tue-10",)))     # 1:A
    c.run_until(2.0)
    c.write("B", Book("room", "mon-10", "bob", ("tue-10",)))       # 2:B
    assert c.server("B").db == {"room@mon-10": "bob"}               # bob's tentative view
    assert c.session("A", "B") is False                             # still partitioned
    c.heal()
    assert c.session("A", "B")
    b = c.server("B")
    assert b.db == c.server("A").db == {"room@mon-10": "alice", "room@tue-10": "bob"}
    assert b.stats["rolled_back"] == 1 and b.stats["outcome_changes"] == 1
    assert c.session("P", "A") and c.session("P", "B")
    c.commit()
    assert c.session("P", "A") and c.session("P", "B")
    assert c.converged() and c.checker.ok


def test_the_primarys_commit_order_beats_accept_stamps_and_a_tentative_result_changes():
    c = BayouCluster(["P", "A", "B"], seed=2, faults=LINK)
    c.run_until(1.0)
    c.write("A", Book("room", "mon-10", "alice", ("tue-10",)))     # 1:A, sorts first ...
    c.run_until(2.0)
    c.write("B", Book("room", "mon-10", "bob", ("tue-10",)))       # 2:B
    assert c.receive("P", "B")                                      # ... but P sees bob first
    c.commit()                                                      # 1:2:B is committed
    assert c.session("P", "A")
    a = c.server("A")
    assert a.db == {"room@mon-10": "bob", "room@tue-10": "alice"}   # alice's booking moved
    assert a.stats["outcome_changes"] == 1
    assert [row[0] for row in c.table("A").rows] == ["1:2:B", "∞:1:A"]
    assert c.checker.ok


def test_truncation_then_a_full_database_transfer_then_incremental_again():
    c = BayouCluster(["P", "A", "B"], seed=3, faults=LINK)
    for i in range(4):
        c.run_until(i + 1.0)
        c.write("A", Put(f"k{i}", i))
    c.write("B", Add("cart", "book"))                              # B's own tentative write
    assert c.receive("P", "A")
    c.commit()
    c.truncate("P", keep=0)
    p, b = c.server("P"), c.server("B")
    assert p.log == [] and p.store.osn == 4 and p.store.omitted == {"A": 4}
    assert c.receive("B", "P")                                      # B's CSN 0 < P's OSN 4
    assert b.stats["full_transfers"] == 1 and b.store.osn == 4
    assert [w.label() for w in b.log] == ["∞:4:B"]                  # its own write, redone on top
    assert b.db == {"k0": 0, "k1": 1, "k2": 2, "k3": 3, "cart": ["book"]}
    c.write("A", Put("k9", 9))
    assert c.receive("P", "A") and c.receive("P", "B")
    c.commit()
    assert c.receive("B", "P")                                      # B is past the OSN now
    assert b.stats["full_transfers"] == 1                           # incremental
    assert b.csn == p.csn == 6 and b.db == p.db
    assert c.session("A", "B") and c.session("A", "P")
    assert c.converged() and c.checker.ok


def test_a_crash_keeps_the_log_and_a_restart_rebuilds_the_database():
    c = BayouCluster(["P", "A", "B"], seed=4, faults=LINK)
    c.write("A", Put("X", 1))
    c.write("A", Add("cart", "pen"))
    before = dict(c.server("A").db)
    c.crash("A")
    assert c.write("A", Put("X", 2)) is None                        # down: no answer
    c.restart("A")
    a = c.server("A")
    assert a.db == before and [w.op for w in a.log] == [Put("X", 1), Add("cart", "pen")]
    assert c.write("A", Put("X", 2)).stamp > a.log[0].stamp
    assert c.checker.ok


def test_sessions_and_commits_on_timers_converge_after_a_partition():
    cfg = ServerConfig(tick_s=0.1, session_interval_s=0.3, commit_interval_s=0.5)
    c = BayouCluster(["P", "A", "B", "C"], seed=5, faults=LINK, config=cfg)
    c.partition({"P", "A"}, {"B", "C"})
    for i, server in enumerate("PABCAB"):
        c.run_for(0.2)
        c.write(server, Add("cart", f"item{i}"))
    c.run_for(3.0)
    assert c.server("B").csn == 0                                   # cut off from the primary
    c.heal()
    c.run_for(5.0)
    assert c.converged(), c.checker.convergence_problems(
        {n: c.server(n) for n in c.names})
    assert c.server("C").db == {"cart": [f"item{i}" for i in range(6)]}
    assert c.checker.ok and c.checker.checks > 20


# -- any schedule of on-demand actions keeps the promises ----------------------------------------

ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("write"), st.sampled_from("PAB"), st.integers(0, 3)),
    st.tuples(st.just("session"), st.sampled_from("PAB"), st.sampled_from("PAB")),
    st.tuples(st.just("commit"), st.just(""), st.just("")),
    st.tuples(st.just("truncate"), st.sampled_from("PAB"), st.integers(0, 2)),
    st.tuples(st.just("crash"), st.sampled_from("PAB"), st.just("")),
), max_size=25)


@settings(derandomize=True, max_examples=60, deadline=None)
@given(ACTIONS)
def test_any_schedule_keeps_every_promise_and_converges(actions):
    c = BayouCluster(["P", "A", "B"], seed=0, faults=LINK)
    for i, (kind, x, y) in enumerate(actions):
        c.run_for(0.3)
        if kind == "write":
            c.write(x, Book("room", f"s{y}", f"u{i}", (f"s{(y + 1) % 4}",)) if i % 2
                    else Put(f"k{y}", i))
        elif kind == "session" and x != y:
            c.receive(x, y)
        elif kind == "commit" and c.hosts["P"].alive:
            c.commit()
        elif kind == "truncate" and c.hosts[x].alive:
            c.truncate(x, keep=y)
        elif kind == "crash":
            c.crash(x)
            c.run_for(0.1)
            c.restart(x)
        assert c.checker.ok, c.checker.violations
    for a, b in (("P", "A"), ("P", "B")):                   # the primary gathers everything,
        assert c.session(a, b)
    c.commit()                                              # commits it,
    for a, b in (("P", "A"), ("P", "B")):                   # and the commits spread
        assert c.session(a, b)
    assert c.converged(), c.checker.violations
