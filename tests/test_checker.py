"""Each of the checker's promises catches the bug it is named after."""

from __future__ import annotations

from dynamo_lab import VectorClock as VC, Versioned as V
from dynamo_lab.checker import History, check_key_history
from dynamo_lab.messages import ClientReply
from dynamo_lab.versions import encode_context

KEY = "cart"


def hist(*ops):
    h = History("k")
    for kind, value, clock, ok in ops:
        rec = h.start("c", kind, KEY, value, 0.0)
        if kind == "get":
            h.end(rec, 1.0, ClientReply("r", "get", KEY, ok, values=tuple(value)))
            rec.value = None
        else:
            ctx = encode_context(VC(clock), "k") if ok else None
            h.end(rec, 1.0, ClientReply("r", kind, KEY, ok, context=ctx))
    return h.for_key(KEY)


def names(violations):
    return sorted({v.check for v in violations})


def test_a_correct_history_passes():
    recs = hist(("put", ["a"], {"A": 1}, True), ("put", ["a", "b"], {"A": 2}, True),
                ("get", [["a", "b"]], None, True))
    held = {"A": [V(["a", "b"], VC({"A": 2}))], "B": [V(["a", "b"], VC({"A": 2}))]}
    assert check_key_history(KEY, recs, held) == []


def test_lost_acknowledged_write():
    recs = hist(("put", ["a"], {"A": 1}, True), ("put", ["b"], {"B": 1}, True))
    held = {"A": [V(["a"], VC({"A": 1}))]}
    assert names(check_key_history(KEY, recs, held)) == [
        "acknowledged-write-survives", "concurrent-writes-kept-as-siblings"]


def test_two_writes_stamped_alike_one_lost():
    recs = hist(("put", ["a"], {"A": 1}, True), ("put", ["b"], {"A": 1}, True))
    held = {"A": [V(["a"], VC({"A": 1}))]}
    assert "acknowledged-write-survives" in names(check_key_history(KEY, recs, held))


def test_read_of_a_value_nobody_wrote():
    recs = hist(("put", ["a"], {"A": 1}, True), ("get", [["zzz"]], None, True))
    held = {"A": [V(["a"], VC({"A": 1}))]}
    assert names(check_key_history(KEY, recs, held)) == ["reads-return-written-values"]


def test_replicas_that_disagree():
    recs = hist(("put", ["a"], {"A": 1}, True))
    held = {"A": [V(["a"], VC({"A": 1}))], "B": []}
    assert names(check_key_history(KEY, recs, held)) == ["replicas-converge"]


def test_delete_undone_by_an_older_write():
    recs = hist(("put", ["a"], {"A": 1}, True), ("delete", None, {"A": 2}, True))
    held = {"A": [V(["a"], VC({"A": 1}))]}
    assert "deletes-stay-deleted" in names(check_key_history(KEY, recs, held))


def test_delete_with_a_concurrent_put_may_come_back():
    recs = hist(("put", ["a"], {"A": 1}, True), ("delete", None, {"A": 2}, True),
                ("put", ["b"], {"A": 1, "B": 1}, True))
    held = {"A": [V(None, VC({"A": 2}), True), V(["b"], VC({"A": 1, "B": 1}))]}
    assert check_key_history(KEY, recs, held) == []


def test_failed_writes_may_or_may_not_survive():
    recs = hist(("put", ["a"], {"A": 1}, True), ("put", ["b"], None, False))
    assert check_key_history(KEY, recs, {"A": [V(["a"], VC({"A": 1}))]}) == []
