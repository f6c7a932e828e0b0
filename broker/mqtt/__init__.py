"""Everything that overrides or imports amqtt (placeholder)."""
