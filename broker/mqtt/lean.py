"""Per-connection objects made only when used: the memory an idle connection holds.

An idle connection is most of a node's connections, so what each holds sets how many one node can
keep. Two rules of CPython 3.11 make the difference here:

- **An instance keeps its attributes inline** (8 bytes each, the names shared by every instance of
  the class) while its class has at most 30 attribute names; past that, each instance gets a dict
  of its own (~1.6 KiB for 32 attributes). amqtt's ``Session`` sets 29 in ``__init__`` and its
  protocol handler about as many, and mqchat added its own: both spilled.

  A class's table of attribute names is shared by its instances, but it takes a new name only
  while few instances exist (CPython shrinks the room left for new names by one with each
  instance made): with thousands of connections made at once, a name first set late in a
  connection's life (after its login, on its first delivery) no longer fits, and that instance
  gets a dict of its own after all. ``share_names`` enters every name a class's instances will
  set before any is made; the instance it makes to do so takes one place, so it enters at most
  ``MOST_NAMES`` (29), and refuses more: a 30th name would not be entered, and every instance
  that sets it would spill into a dict (every instance's attribute read then a dict lookup).
- **Empty containers are not free.** An ``asyncio.Event`` or ``asyncio.Queue`` holds a ``deque``
  (~620 bytes even when empty); stock amqtt gave each handler two queues (six deques) and an
  event, none of which mqchat's connections use.

So attributes that hold the same value for every connection are class attributes (read through
the class until a connection sets its own), containers amqtt's code may still touch are made on
first use by ``Lazy``, and the names of both are shared up front. The classes using this are
``ConnectionState`` (the session), ``LeanHandler`` (the protocol handler's base here) and
``MqttProtocol`` (the socket's protocol, broker/mqtt/protocol.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar, cast, overload

from amqtt.session import Session

__all__ = ["MOST_NAMES", "Lazy", "LeanHandler", "run_now", "share_names", "spilled"]

T = TypeVar("T")


class Lazy(Generic[T]):
    """A per-instance value made by ``factory`` on first read and kept as the instance's own
    attribute (a non-data descriptor: from then on the instance's attribute is found first).

    Unlike ``functools.cached_property`` it stores with ``setattr``, so the instance keeps its
    attributes inline instead of getting a ``__dict__`` of its own."""

    __slots__ = ("_factory", "_name")

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Lazy[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> T | Lazy[T]:
        if instance is None:
            return self
        value = self._factory()
        setattr(instance, self._name, value)
        return value


MOST_NAMES = 29
"""Names ``share_names`` can enter: CPython 3.11 gives a class's table room for 30, and the
instance ``share_names`` makes takes one."""


def share_names(cls: type, names: Iterable[str]) -> None:
    """Enter ``names`` in the table of attribute names ``cls``'s instances share (see above): call
    it right after the class is made, before any instance is. A name left out still works; it
    only costs the instances that set it a dict of their own. ValueError past ``MOST_NAMES``."""
    shared = tuple(dict.fromkeys(names))
    if len(shared) > MOST_NAMES:
        raise ValueError(f"{cls.__name__}: {len(shared)} names, and only {MOST_NAMES} fit")
    template: object = object.__new__(cls)
    for name in shared:
        object.__setattr__(template, name, None)
    del template
    type.__setattr__(cls, "_shared_names", frozenset(shared))


def spilled(instance: object) -> set[str]:
    """The names ``instance`` holds that its class's ``share_names`` did not enter: each one cost
    it a dict of its own (for tests: reading ``vars`` makes that dict anyway)."""
    shared: frozenset[str] = getattr(type(instance), "_shared_names", frozenset())
    return set(vars(instance)) - shared


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that awaits nothing that waits (amqtt's packet decoders over a
    ``BufferReader``), run here rather than as a task or from one; RuntimeError, with the coroutine
    closed, if it waits after all."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise RuntimeError(f"{coro!r} waited")


class _NoLock:
    """What amqtt's ``_send_packet`` holds around ``packet.to_stream(writer)``: nothing to hold.
    Every amqtt packet writes itself in one ``writer.write`` and awaits nothing (pinned in
    ``tests/unit/test_amqtt_pin.py``), so two packets' bytes cannot interleave, lock or not."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()

_amqtt_handler_log = logging.getLogger("amqtt.mqtt.protocol.handler")


class LeanHandler:
    """The state of amqtt's ``BrokerProtocolHandler`` as ``MqchatHandler`` uses it, made lazily.

    Its ``__init__`` replaces ``ProtocolHandler.__init__`` and ``BrokerProtocolHandler.__init__``
    (``tests/unit/test_amqtt_pin.py`` pins both): what they set to a constant is a class attribute
    here, and their containers are ``Lazy``. ``_init_session`` keeps amqtt's module logger instead
    of a ``LoggerAdapter`` per connection (its logging is debug-level, and the client id is in the
    messages that matter)."""

    logger: Any = _amqtt_handler_log
    session: Session | None = None
    reader: Any = None
    writer: Any = None
    keepalive_timeout: int | None = None
    _reader_task: asyncio.Task[None] | None = None
    _keepalive_task: asyncio.TimerHandle | None = None
    _reader_ready: asyncio.Event | None = None
    _disconnect_waiter: asyncio.Future[Any] | None = None

    _reader_stopped: Lazy[asyncio.Event] = Lazy(asyncio.Event)
    _write_lock: Any = _NO_LOCK
    _puback_waiters: Lazy[dict[int, asyncio.Future[Any]]] = Lazy(dict)
    _pubrec_waiters: Lazy[dict[int, asyncio.Future[Any]]] = Lazy(dict)
    _pubrel_waiters: Lazy[dict[int, asyncio.Future[Any]]] = Lazy(dict)
    _pubcomp_waiters: Lazy[dict[int, asyncio.Future[Any]]] = Lazy(dict)

    NAMES: tuple[str, ...] = (
        "plugins_manager",
        "_loop",
        "session",
        "reader",
        "writer",
        "keepalive_timeout",
        "_reader_task",
        "_disconnect_waiter",
        "_reader_stopped",
        "_puback_waiters",
    )
    """The attributes a connection's handler sets (for ``share_names``; amqtt's QoS 2 waiters and
    write-timeout timer are left out: they are rare, and a class has room for ``MOST_NAMES``)."""

    def __init__(self, plugins_manager: Any, session: Session | None = None, loop: Any = None) -> None:
        self.plugins_manager = plugins_manager
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        if session is not None:
            self._init_session(session)

    def _init_session(self, session: Session) -> None:
        self.session = session
        keep_alive = session.keep_alive
        self.keepalive_timeout = keep_alive if keep_alive > 0 else None
