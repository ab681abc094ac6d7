"""The TCP runtime: the same sans-I/O node, one OS process per node, over real sockets.

==================  ===========================================================================
``framing``         length-prefixed JSON frames, the hello, the frame size limit
``transport``       persistent peer connections with reconnect and backoff; applies the faults
``process``         ``NodeRuntime``: the TCP ``runtime.Driver`` (asyncio, SQLite, trace file);
                    ``NodeOptions``: a node's options, one JSON file
``http_api``        the client HTTP API and the admin (fault injection) endpoints, on aiohttp
``http_client``     a small blocking HTTP/JSON client for the CLI and ``TcpCluster``
``cluster``         ``TcpCluster``: a local multi-process cluster with ``SimCluster``'s interface
==================  ===========================================================================

Nothing is imported here, so ``import dynamo_lab`` stays light: ``dl.TcpCluster`` is loaded on
first use.
"""
