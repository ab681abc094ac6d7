"""Lab 3: quorums, sloppy quorum and hinted handoff (the paper, sections 4.5 and 4.6),
measured against probabilistically bounded staleness (Bailis et al., VLDB 2012)."""

from pathlib import Path

from .. import Lab, OwnCode

#: The prelude of the grading sandbox: the five decision helpers of :mod:`.decisions`, as
#: source (standard library only), which the setup cell imports in a student's kernel.
DECISIONS = (Path(__file__).resolve().parent / "decisions.py").read_text(encoding="utf-8")

LAB = Lab(
    id="lab3_quorums",
    number=3,
    title="Quorums, sloppy quorum and hinted handoff",
    notebook="quorums",
    invariants={
        'replicas-are-the-first-n-healthy-nodes':
            "choose_replicas sends to every top-N node believed up, replaces each one believed down by the next healthy node of the walk beyond the top N (while there are any), and without sloppy quorum sends to the top N as they are",
        'each-stand-in-is-hinted-with-the-node-it-replaces':
            "a stand-in's hint names the top-N node it replaces: the first down node (in preference order) gets the first spare node of the walk, the next one the next",
        'a-quorum-answers-at-the-needed-th-reply-its-own-included':
            "a quorum answers at the needed-th distinct reply from a target (the coordinator's own write or read counts), finishes when the last awaited target has replied, and ignores repeated and strangers' replies",
        'a-timeout-tries-stand-ins-once-then-fails':
            "on a timeout a quorum that answered finishes; the first time it gives each silent node (a silent stand-in counts for the node it stood in for, the coordinator never) the next spare stand-in, and otherwise it fails",
        'a-failed-write-says-whether-it-may-have-applied':
            "a write that fails says it may have applied when some target acknowledged it (the coordinator's own write included); a failed read never does",
        'read-repair-sends-the-siblings-to-stale-primaries-only':
            "read repair sends the reconciled siblings to each primary that answered for itself with versions other than the siblings, and to nobody else (not to stand-ins)",
        'handoff-sends-each-hint-to-its-node-once-it-is-up':
            "each tick of hinted handoff sends every hint whose intended node is believed up to that node, in the order the hints are kept, and nothing for nodes believed down",
        'a-hint-is-forgotten-only-after-its-node-acknowledged-it':
            "a hint is never forgotten when it is sent, only when its intended node acknowledged exactly the versions held now",
        'cluster-with-your-quorum-parts-matches-the-reference':
            "a cluster whose nodes use your choose_replicas, Quorum, read_repairs and hinted-handoff decisions sends the same messages and answers every client as the reference does, under crashes, partitions and lost messages (same seed, same trace)",
        'the-seeds-sloppy-quorum-story-with-your-parts':
            "the lecture's example, C and D down and E and F standing in, replayed with your parts, gives the reference's stale read, handoff and fresh read",
    },
    sandbox_prelude=DECISIONS,
    own_code=OwnCode(
        modules=("dynamo_lab.node", "dynamo_lab.node.core", "dynamo_lab.node.quorum",
                 "dynamo_lab.node.read_repair", "dynamo_lab.node.hints",
                 "dynamo_lab.node.coordinator", "dynamo_lab.node.handoff", "dynamo_lab.cluster"),
        objects={"dynamo_lab.node.quorum.choose_replicas": "dynamo_lab.node.quorum:choose_replicas",
                 "dynamo_lab.node.quorum.stand_ins": "dynamo_lab.node.quorum:stand_ins",
                 "dynamo_lab.node.quorum.Quorum": "dynamo_lab.node.quorum:Quorum",
                 "dynamo_lab.node.quorum.PutQuorum": "dynamo_lab.node.quorum:PutQuorum",
                 "dynamo_lab.node.quorum.GetQuorum": "dynamo_lab.node.quorum:GetQuorum",
                 "dynamo_lab.node.read_repair.read_repairs": "dynamo_lab.node.read_repair:read_repairs",
                 "dynamo_lab.node.hints.handoff_tick": "dynamo_lab.node.hints:handoff_tick",
                 "dynamo_lab.node.hints.handoff_ack": "dynamo_lab.node.hints:handoff_ack"},
        watched={"dynamo_lab.node.quorum:Quorum": ("on_reply", "on_timeout", "may_have_applied"),
                 "dynamo_lab.node.quorum:PutQuorum": ("may_have_applied",),
                 "dynamo_lab.node.quorum:GetQuorum": ("on_reply",)},
    ),
)
