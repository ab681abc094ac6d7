"""A short seeded slice of the fault campaign (the long one is `make campaign`)."""

from __future__ import annotations

import pytest

from dynamo_lab.campaign import main, run_campaign
from dynamo_lab.node import Parts, Versioning


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_campaign_seed_passes_every_check(seed):
    res = run_campaign(seed, 250)
    assert res.ok, res.report()
    assert res.ops >= 250 and res.faults, res.summary()


class LastWriterWins(Versioning):
    """A broken node: keeps one sibling, dropping concurrent writes."""

    def reconcile(self, versions):
        return super().reconcile(versions)[:1]


class PaperIncrementOnly(Versioning):
    """The paper's rule with no care for races through one coordinator."""

    def new_clock(self, context, node, now, local):
        return context.increment(node, now)


@pytest.mark.parametrize("broken,seed", [(LastWriterWins, 1), (PaperIncrementOnly, 9)])
def test_campaign_catches_a_broken_node_and_names_the_seed(broken, seed):
    res = run_campaign(seed, 300, parts=Parts(versioning=broken()))
    assert not res.ok
    report = res.report()
    assert f"seed={seed}" in report and "--replay" in report
    assert "acknowledged-write-survives" in report
    assert "T=" in report          # the stretch of trace that shows it


def test_campaign_cli_prints_a_summary_line(capsys):
    assert main(["--seeds", "1", "--ops", "60"]) == 0
    out = capsys.readouterr().out
    assert "1 passed, 0 failed" in out
