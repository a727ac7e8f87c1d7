"""Delivery: the durable queue (queue.py), the record kinds it holds (records.py), the sinks that read
from it (sinks.py: the registry; sqlite_store.py, jsonl.py) and the per-sink delivery loop (dispatch.py)."""
