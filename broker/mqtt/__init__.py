"""The embedded MQTT broker: amqtt 0.12.1, pinned exactly, with mqchat's fixes. Nothing else here.

Every module that imports amqtt lives in this folder (``tests/unit/test_amqtt_pin.py`` checks it),
so this folder is all that a new amqtt version can break. Each fix is written up for upstream in
docs/amqtt-upstream.md.

- ``server``: ``MqchatBroker``, amqtt's ``Broker`` subclassed: authentication before anything
  else, no MQTT session state, routing by index, bounded deliveries, mqchat's plugins passed in.
- ``handler``: ``MqchatHandler``, one connection: framed TCP reads, ingest before PUBACK,
  keep-alive enforced, QoS 0/1 deliveries written without a task each.
- ``writes``: ``WriteScheduler``, when a connection's packets are written (corked batches, held
  PUBACKs, the flush timer).
- ``subscriptions``: ``SubscriptionIndex``, who subscribes to a topic, by lookup.
- ``codec``: the packets of the hot path (PUBLISH, PUBACK) and framing, on bytes.
- ``feed``, ``keepalive``, ``lean``: an idle connection kept small: a TCP connection (3.1.1 or 5) is read
  by callbacks (``FrameFeed``, no reading task), keep-alive deadlines wait on one timer per broker
  (``KeepAliveWheel``), and sessions and handlers keep their attributes inline (``share_names``,
  ``Lazy``; a new attribute of either goes in its ``share_names`` list).
- ``persistence``: ``SessionKeeper``, the seam to the store's persistent sessions (resume before
  CONNACK, the inbox subscription restored); the replay itself is ``broker/persistent.py``.
- ``mqtt5``, ``handler5``: MQTT 5, chosen per connection by the CONNECT's protocol level: the codec
  (properties, reason codes) and ``Mqtt5Handler`` (reason codes, the client's limits, topic aliases).
- ``properties``: ``PublishProps``, the MQTT 5 PUBLISH properties ingest and the node share.
- ``plugins``: authentication, topic ACL and presence, built by the node and passed in.
- ``listeners``: amqtt's configuration from mqchat's broker settings.
- ``compat``: the pin, checked when the broker is built.

What is copied from amqtt rather than subclassed, because amqtt builds the object by name and
offers no hook to build another: ``connect`` repeats ``BrokerProtocolHandler.init_from_connect``'s
checks and refusals (reading the CONNECT whole, building a ``ConnectionState``), and
``connection_state`` replaces the parts of ``Session.__init__`` that build a state machine and two
queues per connection. ``MqchatBroker._authenticate`` and ``_topic_filtering`` keep stock's rules
for the verdicts. The pin test holds the digests of the stock source of each, so that an upstream
change is seen and carried over.
"""
