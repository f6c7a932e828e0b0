"""The mqchat node: the embedded MQTT broker, its plugins, ingest and the node's delivery consumer."""
