"""Commands in a child process of a single node (``workers.commands_process``).

``supervisor.py`` is the node's side (start, hand over batches, replace a child that died or
hung), ``main.py`` the child's loop, ``framing.py`` the messages between them, ``forkserver.py``
how a child starts fast.
"""

from workers.runners.child.supervisor import ChildRunner

__all__ = ["ChildRunner"]
