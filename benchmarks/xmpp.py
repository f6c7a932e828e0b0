"""A small XMPP client for the load generator: the chat peer (ejabberd) on the same workload.

Just what a chat client of a WhatsApp-like XMPP service does, and nothing more: a plain TCP
stream (the benchmark runs on loopback, as mqchat's does), SASL PLAIN, a bound resource, stream
management (XEP-0198) so the server acknowledges what it took (the counterpart of mqchat's
``sent``), initial presence (online), and messages with delivery receipts (XEP-0184).

XML is read with the standard library's expat-backed ``XMLPullParser``: a stanza is handed on once
its end tag arrives and then dropped from the tree, so a long stream holds nothing. One connection
object per user, writes gathered per pass of the event loop as ``benchmarks/mqtt.py`` does.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import cast
from xml.etree.ElementTree import Element, ParseError, XMLPullParser
from xml.sax.saxutils import escape, quoteattr

from benchmarks.mqtt import Batched, ConnectionFailed

__all__ = ["CLIENT", "RECEIPTS", "SM", "OnStanza", "XmppConnection", "message_xml", "receipt_xml"]

CLIENT = "jabber:client"
STREAM = "http://etherx.jabber.org/streams"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
SM = "urn:xmpp:sm:3"
RECEIPTS = "urn:xmpp:receipts"

OnStanza = Callable[[Element], None]

_ACK_REQUEST = f"<r xmlns='{SM}'/>".encode()


def message_xml(to: str, ref: str, text: str) -> bytes:
    """A chat message asking for a delivery receipt (XEP-0184)."""
    return (
        f"<message to={quoteattr(to)} id={quoteattr(ref)} type='chat'><body>{escape(text)}</body>"
        f"<request xmlns='{RECEIPTS}'/></message>"
    ).encode()


def receipt_xml(to: str, ref: str) -> bytes:
    received = f"<received xmlns='{RECEIPTS}' id={quoteattr(ref)}/>"
    return f"<message to={quoteattr(to)}>{received}</message>".encode()


class _Protocol(asyncio.Protocol):
    def __init__(self, conn: XmppConnection) -> None:
        self._conn = conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._conn._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._conn._feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn._lost()


class XmppConnection(Batched):
    """One user's XMPP session: ``connect`` logs in and goes online; ``send`` writes a stanza.

    ``on_stanza`` gets every stanza after login except stream-management acknowledgements, which
    go to ``on_acked(h)`` (``h``: how many of this client's stanzas the server has handled)."""

    def __init__(
        self,
        user: str,
        domain: str,
        password: str,
        *,
        resource: str = "bench",
        on_stanza: OnStanza | None = None,
        on_acked: Callable[[int], None] | None = None,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.user, self.domain = user, domain
        self.jid = f"{user}@{domain}/{resource}"
        self._password = password
        self._resource = resource
        self.on_stanza = on_stanza
        self.on_acked = on_acked
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._parser = self._new_parser()
        self._depth = 0
        self._root: Element | None = None
        self._setup: asyncio.Queue[Element] | None = None
        self._ack_asked = False
        self._handled = 0
        """Stanzas received since stream management was enabled (our ``h`` for the server)."""
        self.sent_stanzas = 0
        """Stanzas written since stream management was enabled (what the server's ``h`` counts)."""
        self.connected = False
        self._closing = False
        self._closed = asyncio.Event()

    # ------------------------------------------------------------------ public
    async def connect(
        self, host: str, port: int, *, local_host: str | None = None, timeout: float = 30.0
    ) -> None:
        loop = asyncio.get_running_loop()
        self._setup = asyncio.Queue()
        try:
            await asyncio.wait_for(self._login(loop, host, port, local_host), timeout)
        except ConnectionFailed:
            self._abort()
            raise
        except Exception as exc:
            self._abort()
            raise ConnectionFailed(f"{self.jid}: login failed: {exc!r}") from exc
        self._setup = None
        self.connected = True

    def send(self, stanza: bytes) -> int:
        """Write one stanza and ask for an acknowledgement (one request per pass of the loop);
        returns the stanza's number, which the server's ``h`` reaches once it has handled it."""
        self._write(stanza)
        self.sent_stanzas += 1
        if not self._ack_asked:
            self._ack_asked = True
            asyncio.get_running_loop().call_soon(self._ask_ack)
        return self.sent_stanzas

    async def close(self, timeout: float = 5.0) -> None:
        self._closing = True
        transport = self._transport
        if not self.connected or transport is None:
            self._abort()
            return
        self.connected = False
        self._write(b"</stream:stream>")
        self._flush()
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except TimeoutError:
            transport.abort()

    # ------------------------------------------------------------------ login
    async def _login(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int, local_host: str | None
    ) -> None:
        local = None if local_host is None else (local_host, 0)
        await loop.create_connection(lambda: _Protocol(self), host, port, local_addr=local)
        self._open_stream()
        await self._expect(f"{{{STREAM}}}features")
        plain = base64.b64encode(f"\0{self.user}\0{self._password}".encode()).decode()
        self._write(f"<auth xmlns='{SASL}' mechanism='PLAIN'>{plain}</auth>".encode())
        answer = await self._next()
        if answer.tag != f"{{{SASL}}}success":
            raise ConnectionFailed(f"{self.jid}: authentication refused ({answer.tag})")
        self._parser, self._depth, self._root = self._new_parser(), 0, None  # the stream restarts
        self._open_stream()
        features = await self._expect(f"{{{STREAM}}}features")
        self._write(
            f"<iq type='set' id='bind'><bind xmlns='{BIND}'><resource>{escape(self._resource)}"
            "</resource></bind></iq>".encode()
        )
        bound = await self._expect(f"{{{CLIENT}}}iq")
        if bound.get("type") != "result":
            raise ConnectionFailed(f"{self.jid}: resource binding refused")
        if features.find(f"{{{SM}}}sm") is None:
            raise ConnectionFailed(f"{self.jid}: the server offers no stream management (mod_stream_mgmt)")
        self._write(f"<enable xmlns='{SM}'/>".encode())
        await self._expect(f"{{{SM}}}enabled")
        self._write(b"<presence/>")  # online: messages now come here at once
        self.sent_stanzas = 1

    def _open_stream(self) -> None:
        self._write(
            f"<?xml version='1.0'?><stream:stream to={quoteattr(self.domain)} xmlns='{CLIENT}' "
            f"xmlns:stream='{STREAM}' version='1.0'>".encode()
        )

    async def _next(self) -> Element:
        assert self._setup is not None
        stanza = await self._setup.get()
        if stanza.tag == f"{{{STREAM}}}error":
            raise ConnectionFailed(f"{self.jid}: stream error {[child.tag for child in stanza]}")
        return stanza

    async def _expect(self, tag: str) -> Element:
        stanza = await self._next()
        if stanza.tag != tag:
            raise ConnectionFailed(f"{self.jid}: expected {tag}, got {stanza.tag}")
        return stanza

    # ------------------------------------------------------------------ reading
    @staticmethod
    def _new_parser() -> XMLPullParser[Element]:
        return XMLPullParser(events=("start", "end"))

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed(data)
            for item in self._parser.read_events():
                event, element = cast(tuple[str, Element], item)  # start and end events only
                if event == "start":
                    if self._depth == 0:
                        self._root = element
                    self._depth += 1
                    continue
                self._depth -= 1
                if self._depth == 1:
                    self._stanza(element)
                    if self._root is not None:
                        self._root.clear()  # a long stream keeps nothing
        except ParseError:
            self._abort()

    def _stanza(self, stanza: Element) -> None:
        if self._setup is not None:
            self._setup.put_nowait(stanza)
        elif stanza.tag == f"{{{SM}}}a":
            if self.on_acked is not None:
                self.on_acked(int(stanza.get("h", "0")))
        elif stanza.tag == f"{{{SM}}}r":
            self._write(f"<a xmlns='{SM}' h='{self._handled}'/>".encode())
        else:
            self._handled += 1
            if self.on_stanza is not None:
                self.on_stanza(stanza)

    # ------------------------------------------------------------------ writing
    def _ask_ack(self) -> None:
        self._ack_asked = False
        self._write(_ACK_REQUEST)

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        else:
            self._closed.set()

    def _lost(self) -> None:
        was = self.connected
        self.connected = False
        self._closed.set()
        if self._setup is not None:
            self._setup.put_nowait(Element(f"{{{STREAM}}}error"))
        if was and not self._closing and self._on_lost is not None:
            self._on_lost()
