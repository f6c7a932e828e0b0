"""The exact amqtt version broker/mqtt/ was written against.

Every module of broker/mqtt/ overrides, repeats or relies on private parts of amqtt's Broker,
protocol handler, Session and plugin manager. Another amqtt version may rename or change them
silently, so the node refuses to start on any other version, and ``tests/unit/test_amqtt_pin.py``
checks that what we override or copy is still there, unchanged.
"""

from __future__ import annotations

from importlib.metadata import version

__all__ = ["AMQTT_VERSION", "check_amqtt_version"]

AMQTT_VERSION = "0.12.1"


def check_amqtt_version() -> None:
    found = version("amqtt")
    if found != AMQTT_VERSION:
        raise RuntimeError(
            f"mqchat's broker is built for amqtt {AMQTT_VERSION}, found {found}: "
            "check broker/mqtt/ against the new version before changing the pin"
        )
