"""amqtt plugins of the node: authentication, topic ACL and presence.

Each plugin has a strictly validated ``Config`` dataclass (amqtt loads it with dacite) and is bound
to the few node services it needs by ``bind`` before the broker starts. Until bound, security
plugins deny everything.
"""
