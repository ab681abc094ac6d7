"""The lecture dashboard: a live page for a running TCP cluster, and scripted demos.

``dynamo-lab dashboard`` (or ``dynamo-lab cluster up --dashboard``) serves one page on
127.0.0.1 (:mod:`.server`): the ring with every node's tokens and state, what each node believes
of the others, keys, hints, generations and requests in flight, a live space-time strip of the
nodes' trace, a narration line per notable event, and controls (kill -9, restart, partition,
heal, drop rate, a cart to get, put and merge). What the page shows is worked out in
:mod:`.feed` (pure, tested without a browser); the page itself is plain JavaScript in
``static/`` with no dependency, so it works with the network off.

``dynamo-lab demo NAME`` runs a scripted demo (:mod:`.demos`) that waits on the cluster's state,
not on sleeps, and ends in the same outcome every run.
"""
