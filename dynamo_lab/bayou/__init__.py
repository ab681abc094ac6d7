"""Bayou (Terry et al., SOSP 1995; Petersen et al., SOSP 1997) on the same simulator as Dynamo.

One module per technique:

=================  ==========================================================================
``writes``         operations (dependency check, update, merge procedure), writes, the stamp rule
``log``            the log order (committed by CSN, tentative by (stamp, server)), positions
``database``       the log applied in order, undo records for rollback
``anti_entropy``   what a sender sends given the receiver's version vector and CSN; the commit
``truncation``     discarding the committed head: checkpoint, omitted vector, OSN
``messages``       messages and timers, through the project's JSON codec
``server``         the sans-I/O server that puts them together
``cluster``        :class:`BayouCluster`: servers, clients, sessions and faults in the simulator
``checker``        Bayou's promises, checked after every step
``tables``         a log as the lecture's slides show it (``CSN:TS:server``, version vector)
``lecture``        the lecture's example, step by step
``campaign``       seeded fault campaigns (``python -m dynamo_lab.bayou.campaign``)
=================  ==========================================================================
"""

from .checker import BayouChecker, Violation
from .cluster import BayouCluster
from .server import BayouStore, Parts, Server, ServerConfig
from .tables import Table, parse, render, table
from .writes import Add, Book, Commit, Delete, Put, Write, new_stamp

__all__ = ["Add", "BayouChecker", "BayouCluster", "BayouStore", "Book", "Commit", "Delete",
           "Parts", "Put", "Server", "ServerConfig", "Table", "Violation", "Write", "new_stamp",
           "parse", "render", "table"]
