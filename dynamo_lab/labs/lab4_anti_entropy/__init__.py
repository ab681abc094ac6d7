"""Lab 4: anti-entropy with Merkle trees (the paper, section 4.7): a fixed-shape hash tree per
key range, the top-down diff and what it costs, the repair, and a wiped replica rebuilt."""

from .. import Lab, OwnCode

LAB = Lab(
    id="lab4_anti_entropy",
    number=4,
    title="Anti-entropy with Merkle trees",
    notebook="anti_entropy",
    invariants={
        'a-key-lives-in-the-leaf-of-its-position':
            "a key's entry (key, digest) is in the leaf of its position in the tree's key range, bucket floor(offset * 2**depth / width), whichever other keys are present, and in no other leaf",
        'every-node-hashes-its-children-by-the-formula':
            "a leaf's hash is SHA-256 of the JSON list of its [key, digest] pairs sorted by key, an inner node's is SHA-256 of its two children's hashes (raw bytes, left then right), empty subtrees included",
        'updates-and-deletes-keep-every-hash-current':
            "after any sequence of writes, overwrites and deletes, every hash and leaf is what a tree built from the keys left would hold",
        'the-diff-descends-only-where-hashes-differ':
            "diff_level returns the nodes whose hash differs from the other side's and, for each of them only, its two children's hashes (at the leaves, the entries of the differing leaves)",
        'the-diff-finds-exactly-the-differing-keys-and-its-cost':
            "merkle_diff returns exactly the keys held by one side only or with different digests, 1 hash for the roots plus 2 for every differing inner node, and the levels visited",
        'differing-keys-are-exactly-the-keys-whose-digests-differ':
            "differing_keys returns, sorted, the keys of the differing leaves held by one side only or by both with different digests, and nothing else",
        'repair-keeps-the-reconciled-siblings-and-never-overwrites':
            "a repaired key keeps the reconciled siblings of both sides' versions, never only the versions received",
        'repair-sends-back-only-what-the-other-side-lacks':
            "a repair sends the siblings back exactly when the other side does not hold exactly them",
        'cluster-with-your-anti-entropy-parts-matches-the-reference':
            "a cluster whose nodes use your MerkleTree, diff_level, differing_keys and repair_key sends the same messages and ends with the same data as the reference, under crashes, partitions, lost messages and a wiped disk (same seed, same trace)",
        'a-wiped-replica-is-rebuilt-by-your-anti-entropy':
            "a node whose disk was wiped gets back every key it replicates through anti-entropy alone, as fast as with the reference's parts",
    },
    #: The setup cell's standard-library imports that the answer cells use (the key hash and
    #: RING_SIZE are always there).
    sandbox_prelude="import hashlib\nimport json\nimport math\n",
    own_code=OwnCode(
        modules=("dynamo_lab.merkle", "dynamo_lab.node", "dynamo_lab.node.core",
                 "dynamo_lab.node.exchange", "dynamo_lab.node.anti_entropy", "dynamo_lab.cluster"),
        objects={"dynamo_lab.merkle.MerkleTree": "dynamo_lab.merkle:MerkleTree",
                 "dynamo_lab.merkle.merkle_diff": "dynamo_lab.merkle:merkle_diff",
                 "dynamo_lab.merkle.child_hashes": "dynamo_lab.merkle:child_hashes",
                 "dynamo_lab.merkle.differing_children": "dynamo_lab.merkle:differing_children",
                 "dynamo_lab.merkle.diff_entries": "dynamo_lab.merkle:diff_entries",
                 "dynamo_lab.node.exchange.diff_level": "dynamo_lab.node.exchange:diff_level",
                 "dynamo_lab.node.exchange.differing_keys": "dynamo_lab.node.exchange:differing_keys",
                 "dynamo_lab.node.exchange.repair_key": "dynamo_lab.node.exchange:repair_key"},
        watched={"dynamo_lab.merkle:MerkleTree": ("update", "remove", "node_hash", "leaf_entries")},
    ),
)
