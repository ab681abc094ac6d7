"""Per-leg latencies (faults.FaultConfig.legs) and the PBS paper's named presets: a config
without them draws exactly what it drew before; with them, each leg of a request takes its own
mixture, and every other message the base latency."""

from __future__ import annotations

import random
import statistics

import pytest

import dynamo_lab as dl
from dynamo_lab.errors import ConfigError
from dynamo_lab.faults import LEGS, MIXTURES, PRESETS, FaultConfig, draw_ms, leg_of
from dynamo_lab.messages import ReplicaGet, ReplicaPut


def test_without_legs_the_draws_are_todays():
    old, new = random.Random(3), random.Random(3)
    cfg = FaultConfig(drop=0.1, duplicate=0.1, reorder=0.2)
    before = [cfg.fate(old) for _ in range(200)]
    after = [cfg.fate(new, leg) for leg in ["write", "ack", None, "read"] * 50]
    assert before == after
    assert cfg.legs == () and "legs" not in cfg.describe()


def test_presets_are_the_papers_table_3_and_round_trip_through_json():
    ssd, disk = FaultConfig.preset("LNKD-SSD"), FaultConfig.preset("LNKD-DISK")
    assert dict(ssd.legs) == {leg: MIXTURES["LNKD-SSD"] for leg in LEGS}
    assert dict(disk.legs)["write"] == ((0.38, "pareto", 1.05, 1.51), (0.62, "exponential", 0.183))
    assert all(dict(disk.legs)[leg] == MIXTURES["LNKD-SSD"] for leg in ("ack", "read", "response"))
    assert set(PRESETS) == {"LNKD-SSD", "LNKD-DISK"}
    for cfg in (ssd, disk, FaultConfig.preset("LNKD-SSD", drop=0.01)):
        assert FaultConfig.from_json(cfg.to_json()) == cfg
        assert hash(cfg) == hash(FaultConfig.from_json(cfg.to_json()))
    assert ssd.latency_s(random.Random(1)) == 0.0       # every other message is instant
    with pytest.raises(ConfigError, match="the presets are"):
        FaultConfig.preset("YMMR")


def test_a_mixture_draws_its_components_by_weight():
    rng = random.Random(7)
    ssd = [draw_ms(MIXTURES["LNKD-SSD"], rng) for _ in range(40000)]
    # 91.22% Pareto(0.235, 10) (mean 0.261) + 8.78% Exponential(1.66) (mean 0.602)
    assert statistics.fmean(ssd) == pytest.approx(0.9122 * 0.235 * 10 / 9 + 0.0878 / 1.66, rel=0.03)
    assert min(ssd) > 0 and sum(x < 0.235 for x in ssd) / len(ssd) == pytest.approx(0.0878 * 0.32, abs=0.01)
    assert draw_ms(((1.0, "constant", 4.0),), rng) == 4.0


@pytest.mark.parametrize("legs, why", [
    ({"write": "LNKD-HDD"}, "no latency mixture"),
    ({"disk": "LNKD-SSD"}, "at most once"),
    ({"write": ((0.5, "pareto", 1.0, 2.0),)}, "sum to 1"),
    ({"write": ((1.0, "gamma", 1.0),)}, "kind one of"),
    ({"write": ((1.0, "exponential", 0.0),)}, "> 0 for pareto"),
])
def test_bad_legs_say_what_is_expected(legs, why):
    with pytest.raises(ConfigError, match=why):
        FaultConfig(legs=legs)


def test_the_simulator_gives_each_leg_its_own_latency():
    assert leg_of(ReplicaPut("r", "k", ())) == "write" and leg_of(ReplicaGet("r", "k")) == "read"
    slow = FaultConfig(latency="constant", latency_ms=1.0,
                       legs={"write": ((1.0, "constant", 50.0),)})
    cluster = dl.SimCluster(nodes=3, seed=1, faults=slow, anti_entropy=False)
    cluster.client("a").put("k", 1, via="A")
    sends = {}
    for e in cluster.sim.trace.events:
        if e.kind == "send" and type(e.msg).__name__ in ("ReplicaPut", "ReplicaPutAck"):
            sends.setdefault(type(e.msg).__name__, e.time)
        if e.kind == "deliver" and type(e.msg).__name__ == "ReplicaPut":
            assert e.time - sends["ReplicaPut"] == pytest.approx(0.050)
        if e.kind == "deliver" and type(e.msg).__name__ == "ReplicaPutAck":
            assert e.time - sends["ReplicaPutAck"] == pytest.approx(0.001)
    assert {"ReplicaPut", "ReplicaPutAck"} <= set(sends)
