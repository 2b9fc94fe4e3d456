"""The station's OPC UA server (extra ``opcua``), shaped after OPC 40100 Machine Vision.

Example:
    >>> from edgead.opcua.config import OpcUaConfig                      # doctest: +SKIP
    >>> from edgead.opcua.server import OpcUaServer, ResultInfo
    >>> with OpcUaServer(OpcUaConfig(listen="127.0.0.1:4840", users_file=...), "line3") as server:
    ...     server.publish_result(ResultInfo(1, "17", Verdict.ACCEPT, 0.1))
"""
