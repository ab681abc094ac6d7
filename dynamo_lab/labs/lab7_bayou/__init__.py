"""Lab 7: Bayou, beside Dynamo (the seeds' "Dynamo / Bayou" lecture; Terry et al., SOSP 1995;
Petersen et al., SOSP 1997): the write log, tentative and committed writes, anti-entropy
sessions and the primary's commit."""

from pathlib import Path

from .. import Lab, OwnCode
from .records import Commit, Write

#: The prelude of the grading sandbox: the lab's two records, as source (standard library
#: only), which the setup cell imports in a student's kernel.
RECORDS = (Path(__file__).resolve().parent / "records.py").read_text(encoding="utf-8")

_REFERENCE = ("dynamo_lab.bayou", "dynamo_lab.bayou.anti_entropy", "dynamo_lab.bayou.log",
              "dynamo_lab.bayou.writes", "dynamo_lab.bayou.server", "dynamo_lab.bayou.cluster",
              "dynamo_lab.bayou.database", "dynamo_lab.bayou.truncation")

LAB = Lab(
    id="lab7_bayou",
    number=7,
    title="Bayou: the write log, tentative and committed writes, primary commit",
    notebook="bayou",
    invariants={
        'a-new-write-is-stamped-above-every-stamp-seen':
            "a new write's accept-stamp is max(clock, max stamp seen + 1): at least the server's clock, and above every stamp in its version vector",
        'tentative-writes-sort-by-stamp-then-server-after-the-committed':
            "an incoming tentative write goes after every committed entry and, among the tentative ones, in (stamp, server) order; every entry after it is rolled back",
        'a-committed-write-goes-after-the-committed-before-the-tentative':
            "an incoming committed write goes right after the committed entries (its CSN is the next) and before every tentative one, whatever its stamp",
        'the-sender-sends-exactly-what-the-receiver-lacks':
            "an anti-entropy sender sends each write the receiver's version vector says it lacks, a commit notice for each write it holds but does not know committed, and nothing else",
        'a-session-sends-in-the-senders-log-order':
            "a session's items go in the sender's log order (committed by CSN, then tentative by stamp and server), so the receiver keeps the prefix property",
        'the-primary-commits-its-tentative-writes-in-log-order':
            "the primary gives each tentative write it holds the next CSN, in its log order (which respects causality), and commits nothing twice",
        'the-lectures-example-with-your-parts':
            "the lecture's example (P, A, B; sessions A & B and P & B; two commits; D(Y) stamped 13) with your parts gives the slides' tables at every step",
        'servers-with-your-parts-match-the-reference':
            "Bayou servers using your parts send the same messages, keep Bayou's promises and end with the same databases as the reference's, under crashes, partitions, lost messages and truncation (same seed, same trace)",
    },
    sandbox_prelude=RECORDS,
    records=(Write, Commit),
    own_code=OwnCode(
        modules=_REFERENCE,
        objects={"dynamo_lab.bayou.new_stamp": "dynamo_lab.bayou.writes:new_stamp",
                 "dynamo_lab.bayou.log.position": "dynamo_lab.bayou.log:position",
                 "dynamo_lab.bayou.log.order_key": "dynamo_lab.bayou.log:order_key",
                 "dynamo_lab.bayou.anti_entropy.writes_to_send":
                     "dynamo_lab.bayou.anti_entropy:writes_to_send",
                 "dynamo_lab.bayou.anti_entropy.commit": "dynamo_lab.bayou.anti_entropy:commit"},
    ),
)
