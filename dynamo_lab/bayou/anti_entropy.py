"""Anti-entropy, the sender's side, and the primary's commit (Petersen et al., SOSP 1997).

A session is one-way: the **receiver** tells the sender its version vector and its CSN (how
many committed writes it knows), and the sender answers with exactly what the receiver lacks,
in the sender's log order:

* each committed write the receiver does not know as committed: the whole write if the
  receiver does not hold it, else only a :class:`Commit` notice (the commit information
  travels, not the write again);
* each tentative write the receiver does not hold.

"Does not hold" is read off the vector: the receiver holds X's write stamped ``t`` exactly
when ``t <= vector[X]``. That is true only because of the **prefix property**: a server holds
a prefix of every server's writes in accept-stamp order, which the log order keeps, since a
server's writes sort by stamp in it (the primary commits them in that order too).

When the sender has truncated committed writes the receiver has not seen (the receiver's CSN
is below the sender's OSN), the writes are gone: the sender sends its checkpoint instead, the
database as of its OSN, and then the rest of its log as above.
"""

from __future__ import annotations

from typing import Mapping, Sequence, Union

from .writes import Commit, Write


def writes_to_send(log: Sequence[Write], receiver_vector: Mapping[str, int],
                   receiver_csn: int) -> tuple[Union[Write, Commit], ...]:
    """What a sender with ``log`` (in log order) sends a receiver whose version vector and CSN
    are given: the writes it lacks and commit notices for the ones it holds tentatively, in
    the sender's log order. Nothing it already has; nothing out of order."""
    out: list[Union[Write, Commit]] = []
    for w in log:
        held = w.stamp <= receiver_vector.get(w.server, 0)
        if w.csn is not None:
            if w.csn > receiver_csn:
                out.append(Commit(w.stamp, w.server, w.csn) if held else w)
        elif not held:
            out.append(w)
    return tuple(out)


def needs_checkpoint(sender_osn: int, receiver_csn: int) -> bool:
    """Whether the receiver lacks committed writes the sender has truncated: then only a full
    database transfer (the sender's checkpoint) can bring it up to date."""
    return receiver_csn < sender_osn


def commit(log: Sequence[Write], csn: int) -> tuple[Commit, ...]:
    """The primary's commit: each tentative write it holds gets the next CSN, in its log order.

    The log order of tentative writes is by accept-stamp, and a write is stamped above every
    write its server held when it accepted it; the primary holds those too (prefix property).
    So a write is committed after every write it may depend on: commits respect causality.
    ``csn`` is the highest CSN given so far."""
    tentative = [w for w in log if w.csn is None]
    return tuple(Commit(w.stamp, w.server, csn + i) for i, w in enumerate(tentative, start=1))
