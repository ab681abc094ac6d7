"""Lab 1: consistent hashing (the paper, section 4.2)."""

from .. import Lab, OwnCode

LAB = Lab(
    id="lab1_consistent_hashing",
    number=1,
    title="Consistent hashing",
    notebook="consistent_hashing",
    invariants={
        'successor-is-first-token-at-or-after-hash':
            'successor_index returns the index of the first token >= h, and 0 when h is past the last token (the ring wraps round)',
        'tokens-are-key-hash-of-node-and-index':
            "node X's i-th token is key_hash(f'{X}#{i}'), for i in range(vnodes); tokens() lists every (token, node) pair, sorted",
        'coordinator-owns-first-token-clockwise':
            'a key belongs to the owner of the first token at or after its hash, wrapping past the top of the ring',
        'preference-list-has-n-distinct-physical-nodes':
            'preference_list(key, n) names n different physical nodes of the ring',
        'preference-list-walks-clockwise-from-coordinator':
            'preference_list(key, n) starts at the coordinator and walks the tokens clockwise, skipping nodes already listed',
        'add-and-remove-node-keep-the-ring-consistent':
            'after add_node and remove_node the ring is the ring of its current nodes, and adding a present node or removing an absent one raises ValueError',
        'bad-requests-raise-value-error':
            'a preference list of n < 1 or more nodes than the ring has, and the coordinator of a key on an empty ring, raise ValueError',
        'ownership-is-each-nodes-share-of-the-ring':
            'ownership() gives each node the total width of the arcs (previous token, token] of its tokens, as a fraction of the ring; the shares sum to 1',
        'moved-fraction-counts-keys-whose-replicas-change':
            'moved_fraction(old, new, keys, n) is the fraction of keys whose set of n replicas differs between the two rings',
        'cluster-with-your-ring-matches-the-reference':
            'a cluster whose nodes use your ring stores, serves and hands off every key exactly as the reference cluster does (same seed, same workload)',
    },
    sandbox_prelude="""
import statistics
from bisect import bisect_left


def vnode_token(node, i):
    return key_hash(f"{node}#{i}")
""",
    own_code=OwnCode(
        modules=("dynamo_lab.ring", "dynamo_lab.node", "dynamo_lab.node.core",
                 "dynamo_lab.cluster"),
        objects={"dynamo_lab.Ring": "dynamo_lab.ring:Ring",
                 "dynamo_lab.KeyRange": "dynamo_lab.ring:KeyRange",
                 "dynamo_lab.moved_keys": "dynamo_lab.ring:moved_keys",
                 "dynamo_lab.transfers": "dynamo_lab.ring:transfers"},
        watched={"dynamo_lab.ring:Ring": (
            "__init__", "from_tokens", "coordinator", "preference_list", "preference_list_for_hash",
            "successors", "ownership", "ranges", "range_of", "replica_ranges", "replicas_of_range",
            "add_node", "remove_node", "tokens_of", "token_map", "copy", "_walk", "_index")},
    ),
)
