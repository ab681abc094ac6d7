"""Lab 2: vector clocks, contexts and siblings (the paper, section 4.4)."""

from .. import Lab, OwnCode

LAB = Lab(
    id="lab2_vector_clocks",
    number=2,
    title="Vector clocks",
    notebook="vector_clocks",
    invariants={
        'increment-bumps-only-the-coordinator':
            "increment(clock, node) returns a new clock with node's counter one higher and every other counter unchanged; the input is not modified",
        'merge-is-the-pointwise-maximum':
            'merge(a, b) returns a new clock holding, for every node of either, the larger of the two counters; the inputs are not modified',
        'compare-orders-equal-and-descending-clocks':
            'compare(a, b) is EQUAL for equal counters, AFTER when a strictly descends b, BEFORE when b strictly descends a',
        'compare-detects-concurrent-clocks':
            'compare(a, b) is CONCURRENT when neither clock descends the other',
        'reconcile-drops-every-dominated-version':
            'reconcile keeps no version that another version strictly descends, keeps one version per clock, and only returns versions it was given',
        'reconcile-keeps-every-concurrent-sibling':
            'reconcile keeps every version that no other version strictly descends',
        'merge-carts-keeps-every-item':
            "merge_carts(siblings) is the sorted union of the siblings' items, each once",
        'd1-d5-story-with-your-clocks':
            "the paper's D1..D5 story, replayed on a cluster using your clock logic, gives the paper's clocks and siblings",
        'cluster-with-your-clocks-matches-the-reference':
            'a cluster whose nodes use your clock logic answers every get and put of a seeded concurrent workload exactly as the reference cluster does',
    },
    sandbox_prelude="""
Version = __wire__["Version"]
BEFORE, AFTER, EQUAL, CONCURRENT = "before", "after", "equal", "concurrent"
""",
    own_code=OwnCode(
        modules=("dynamo_lab.vclock", "dynamo_lab.versions", "dynamo_lab.node",
                 "dynamo_lab.node.config", "dynamo_lab.node.core", "dynamo_lab.cluster"),
        objects={"dynamo_lab.VectorClock": "dynamo_lab.vclock:VectorClock",
                 "dynamo_lab.Versioned": "dynamo_lab.versions:Versioned",
                 "dynamo_lab.reconcile": "dynamo_lab.versions:reconcile",
                 "dynamo_lab.merged_clock": "dynamo_lab.versions:merged_clock",
                 "dynamo_lab.live_values": "dynamo_lab.versions:live_values",
                 "dynamo_lab.Versioning": "dynamo_lab.node.config:Versioning"},
        watched={"dynamo_lab.vclock:VectorClock": (
                     "__init__", "_make", "increment", "merge", "descends", "compare",
                     "concurrent_with", "truncate"),
                 "dynamo_lab.versions:Versioned": ("descends",)},
    ),
)
