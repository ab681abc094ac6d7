"""Lab 5: gossip membership and failure detection (the paper, sections 4.8 and 4.9), measured
against the epidemic results: Pittel's push-gossip rounds (1987), Demers et al.'s rumour
mongering residue (PODC 1987), and the phi accrual detector of Hayashibara et al. (2004)."""

from pathlib import Path

from .. import Lab, OwnCode

#: The prelude of the grading sandbox (standard library only): what the setup cell imports.
HELPERS = (Path(__file__).resolve().parent / "helpers.py").read_text(encoding="utf-8")

LAB = Lab(
    id="lab5_gossip",
    number=5,
    title="Gossip membership and failure detection",
    notebook="gossip",
    invariants={
        'merge-keeps-the-higher-generation-and-heartbeat':
            "merge_views keeps, for every other member, the state with the higher (generation, heartbeat), on a tie the further status (up, leaving, left), with that state's tokens; a member either side knows is kept and the arguments are not modified",
        'my-own-entry-is-raised-only-by-me':
            "a claim about the merging node never replaces its own state: a claim of a higher generation makes it take the generation above (heartbeat 0), a claim of its generation at or above its heartbeat (and not its own state) the heartbeat above",
        'a-round-raises-my-heartbeat-and-nothing-else':
            "gossip_round returns the view with the node's own heartbeat raised by one and every other entry as it was, without modifying its arguments",
        'a-round-gossips-with-one-peer-picked-uniformly':
            "gossip_round sends to one peer believed up picked with rand[0] among the members that have not left (sorted), or the first seed when it knows nobody, then to one suspected peer picked with rand[1], then to every seed it has not heard of",
        'a-timeout-detector-suspects-after-suspect-after-s':
            "TimeoutDetector suspects a node exactly when more than suspect_after_s has passed since it was last heard (or it never was)",
        'phi-grows-with-silence-in-units-of-the-mean-interval':
            "PhiAccrualDetector's phi is the silence since a node was last heard over (the mean of its last window intervals, ln 10), infinite for a node never heard, and a node is suspected when phi is above the threshold",
        'cluster-with-your-gossip-matches-the-reference':
            "a cluster whose nodes use your merge_views, gossip_round and TimeoutDetector converges and routes as the reference does under joins, leaves, crashes, restarts and partitions (same seed, same trace)",
    },
    sandbox_prelude=HELPERS,
    own_code=OwnCode(
        modules=("dynamo_lab.membership", "dynamo_lab.failure_detector", "dynamo_lab.node",
                 "dynamo_lab.node.core", "dynamo_lab.node.gossip", "dynamo_lab.cluster"),
        objects={"dynamo_lab.membership.merge_views": "dynamo_lab.membership:merge_views",
                 "dynamo_lab.membership.merge_state": "dynamo_lab.membership:merge_state",
                 "dynamo_lab.membership.own_state": "dynamo_lab.membership:own_state",
                 "dynamo_lab.membership.gossip_round": "dynamo_lab.membership:gossip_round",
                 "dynamo_lab.membership.pick": "dynamo_lab.membership:pick",
                 "dynamo_lab.membership.Membership": "dynamo_lab.membership:Membership",
                 "dynamo_lab.failure_detector.TimeoutDetector":
                     "dynamo_lab.failure_detector:TimeoutDetector",
                 "dynamo_lab.failure_detector.PhiAccrualDetector":
                     "dynamo_lab.failure_detector:PhiAccrualDetector"},
        watched={"dynamo_lab.membership:Membership": ("merge", "beat", "suspected"),
                 "dynamo_lab.failure_detector:TimeoutDetector": ("heard", "suspected"),
                 "dynamo_lab.failure_detector:PhiAccrualDetector": ("heard", "phi", "suspected")},
    ),
)
