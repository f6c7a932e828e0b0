"""mqchat's load generator: ``python -m benchmarks --help``.

Modes: ``raw`` (plain MQTT QoS 1 pairs and idle subscribers, against mqchat, Mosquitto, stock
amqtt or any broker), ``chat`` (mqchat's JSON contract end to end: sent, delivered, receipts) and
``sync`` (an offline user catches up). The load runs in worker processes (``worker.py``), each with
many connections on one asyncio loop; the coordinator (``coordinator.py``) starts the broker
(``targets.py``), drives the steps, samples CPU and memory (``procstat.py``) and reports
(``report.py``). See ``benchmarks/RESULTS.md`` for the figures and the commands that made them.
"""

__all__: list[str] = []
