"""Versioned JSON for graphs: ``{"schema_version": 1, "nodes": [{"op": .., "args": [..]}, ..], "output": i}``."""
from __future__ import annotations

import json

from autobert.graph.errors import GraphError
from autobert.graph.graph import MAX_JSON_CHARS, MAX_RAW_NODES, SCHEMA_VERSION, Graph


def graph_from_json(text: "str | bytes | dict") -> Graph:
    """Decode and validate a graph document; every problem is a GraphError naming where it is."""
    if isinstance(text, (str, bytes, bytearray)):
        if len(text) > MAX_JSON_CHARS:
            raise GraphError(f"graph JSON is {len(text)} characters; at most {MAX_JSON_CHARS} are accepted")
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise GraphError(f"graph JSON does not parse: {e}") from None
    elif isinstance(text, dict):
        doc = text
    else:
        raise GraphError(f"graph JSON must be a str or dict, got {type(text).__name__}")
    if not isinstance(doc, dict):
        raise GraphError(f"graph JSON must be an object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise GraphError(f"graph JSON schema_version is {version!r}; this version of autobert reads {SCHEMA_VERSION}")
    unknown = set(doc) - {"schema_version", "nodes", "output"}
    if unknown:
        raise GraphError(f"graph JSON has unknown keys {sorted(unknown)}; expected schema_version, nodes, output")
    raw_nodes = doc.get("nodes")
    if not isinstance(raw_nodes, list):
        raise GraphError("graph JSON 'nodes' must be a list of {\"op\": str, \"args\": [int, ...]}")
    if len(raw_nodes) > MAX_RAW_NODES:
        raise GraphError(f"graph JSON has {len(raw_nodes)} nodes; at most {MAX_RAW_NODES} are accepted")
    nodes = []
    for i, n in enumerate(raw_nodes):
        if not isinstance(n, dict) or not isinstance(n.get("op"), str):
            raise GraphError(f"node {i}: expected an object with a string 'op', got {str(n)[:80]!r}")
        args = n.get("args", [])
        if not isinstance(args, list):
            raise GraphError(f"node {i} ({n['op']}): 'args' must be a list of node indices, got {str(args)[:80]!r}")
        extra = set(n) - {"op", "args"}
        if extra:
            raise GraphError(f"node {i} ({n['op']}): unknown keys {sorted(extra)}; expected op, args")
        nodes.append((n["op"], tuple(args)))
    if "output" not in doc:
        raise GraphError("graph JSON has no 'output' (the index of the output node)")
    return Graph(nodes, doc["output"])
