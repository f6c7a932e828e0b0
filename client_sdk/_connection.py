"""The client's lifecycle: connect and close, paho's callbacks, and the ticker that runs the
session's timers."""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import Any, Final, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from client_sdk._base import END, ClientBase, Closed, State
from client_sdk._errors import AuthenticationError, ConnectError, NotConnected, Timeout, connect_refused
from client_sdk._inbound import feed, incoming
from client_sdk._settings import MqttVersion

__all__ = ["RECONNECT_MAX_DELAY", "RECONNECT_MIN_DELAY", "Connection", "log_refused_publish"]

logger = logging.getLogger(__name__)

RECONNECT_MIN_DELAY: Final = 1
"""Seconds before the first reconnection attempt; doubles per failure up to RECONNECT_MAX_DELAY."""
RECONNECT_MAX_DELAY: Final = 5


class Connection(ClientBase):
    """Opening and closing the client, and what paho's network thread tells it."""

    _token: str
    _transport: Literal["tcp", "websockets"]
    _ws_path: str
    _mqtt_version: MqttVersion
    _tls: ssl.SSLContext | bool
    _keepalive: int
    _connect_timeout: float
    _reconnect: bool
    _ticker: threading.Thread | None
    _first_connack: ReasonCode | None
    """The answer to the first CONNECT, awaited by :meth:`connect`."""
    _first_connection_lost: bool

    def connect(self) -> None:
        """Connect and start the network thread; returns once the server accepted the connection.

        Catching up (the initial sync) goes on in the background: see :meth:`wait_synced`.
        Raises :class:`AuthenticationError` when the credentials are refused, :class:`ConnectError`
        when the server cannot be reached or does not answer within ``connect_timeout``, and
        ``RuntimeError`` when the client is already open or was closed.
        """
        with self._lock:
            if self._state is not State.NEW:
                raise RuntimeError(f"the client is {self._state.value}; a client is opened only once")
            self._state = State.CONNECTING
        try:
            self._open()
        except BaseException:
            with self._lock:
                if self._state is State.CONNECTING:
                    self._state = State.NEW
            raise
        with self._lock:
            if self._state is not State.CONNECTING:  # closed by another thread meanwhile
                raise NotConnected("the client was closed while connecting")
            self._state = State.OPEN
            self._ticker = threading.Thread(
                target=self._tick, name=f"mqchat-ticker {self.client_id}", daemon=True
            )
            self._ticker.start()

    def close(self) -> None:
        """Disconnect and stop the threads. Idempotent.

        Iterators over :meth:`events` end once the queued events are consumed; waits on outgoing
        messages raise :class:`NotConnected`. Messages not yet published are dropped.
        """
        with self._lock:
            if self._state is State.CLOSED:
                return
            self._state = State.CLOSED
            client, ticker = self._mqtt, self._ticker
            self._session.on_disconnected()
            self._changed.notify_all()
        if client is not None:
            _stop(client)
        if ticker is not None:
            ticker.join()
        with self._lock:
            self._session.outbox.close()
            self._session.requests.close()
            cursor = self._session.cursor
        self._events.put(END)
        self._persist(cursor)
        logger.debug("%s closed at cursor %d", self.client_id, cursor)

    def wait_synced(self, *, timeout: float | None = None) -> None:
        """Block until the catch-up after the latest connect reached the end of the inbox.

        Raises :class:`Timeout` after ``timeout`` seconds (None: no limit), :class:`NotConnected`
        when the client is not open or gets closed.
        """
        with self._changed:
            self._require_open()
            if not self._changed.wait_for(
                lambda: self._session.synced or self._state is State.CLOSED, timeout
            ):
                raise Timeout(f"{self.client_id} did not finish syncing within {timeout} s")
            self._require_open()

    # -- internals -----------------------------------------------------------------------------------

    def _open(self) -> None:
        mqtt5 = self._mqtt_version == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            # MQTT 5 has clean start (given to connect below) instead of clean session
            clean_session=None if mqtt5 else True,
            protocol=mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311,
            transport=self._transport,
            reconnect_on_failure=self._reconnect,
        )
        client.username_pw_set(self._user, self._token)
        if self._transport == "websockets":
            client.ws_set_options(path=self._ws_path)
        if self._tls is not False:
            client.tls_set_context(ssl.create_default_context() if self._tls is True else self._tls)
        client.reconnect_delay_set(min_delay=RECONNECT_MIN_DELAY, max_delay=RECONNECT_MAX_DELAY)
        client.connect_timeout = self._connect_timeout
        client.suppress_exceptions = True  # second line of defence: the callbacks catch everything already
        client.on_log = _log_paho
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        with self._lock:
            self._mqtt = client
            self._first_connack = None
            self._first_connection_lost = False
        deadline = time.monotonic() + self._connect_timeout
        where = f"{self._host}:{self._port}"
        try:
            if mqtt5:
                # Every connection starts clean, as on 3.1.1: the client catches up with `sync`
                # from its cursor, so it needs no session kept by the server.
                client.connect(self._host, self._port, keepalive=self._keepalive, clean_start=True)
            else:
                client.connect(self._host, self._port, keepalive=self._keepalive)
        except OSError as exc:  # socket, TLS and WebSocket handshake errors are all OSErrors
            raise ConnectError(f"cannot connect to {where}: {exc}") from exc
        client.loop_start()
        with self._changed:
            self._changed.wait_for(
                lambda: self._first_connack is not None or self._first_connection_lost,
                max(0.0, deadline - time.monotonic()),
            )
            connack = self._first_connack
        if connack is not None and not connack.is_failure:
            logger.info("%s connected to %s", self.client_id, where)
            return
        _stop(client)
        if connack is None:
            raise ConnectError(f"{where} did not accept the connection within {self._connect_timeout} s")
        raise connect_refused(where, self._user, connack)

    def _tick(self) -> None:
        """Ticker thread: run the session's timers (gap syncs, sync retries) when they are due."""
        with self._changed:
            while self._state is not State.CLOSED:
                due = self._session.next_tick()
                now = time.monotonic()
                if due is None or due > now:
                    self._changed.wait(None if due is None else due - now)
                    continue
                try:
                    self._apply(self._session.on_tick(now=now))
                except Exception:
                    logger.exception("%s: a timer failed", self.client_id)
                    self._changed.wait(1.0)

    # -- paho callbacks (paho's network thread) ------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            with self._lock:
                if client is not self._mqtt or self._state is State.CLOSED:
                    return
                if self._state is State.CONNECTING:
                    self._first_connack = reason_code
                self._changed.notify_all()
                if reason_code.is_failure:
                    if self._state is State.OPEN:
                        logger.warning(
                            "%s: the server refused the reconnection: %s", self.client_id, reason_code
                        )
                        error = connect_refused(f"{self._host}:{self._port}", self._user, reason_code)
                        if isinstance(error, AuthenticationError):
                            # signed out, or its token revoked: trying again would only be refused
                            logger.error("%s: credentials refused; no more reconnecting", self.client_id)
                            client.disconnect()
                            self._events.put(Closed(error))
                    return
                self._apply(self._session.on_connected())
        except Exception:
            logger.exception("%s: error while handling the connection", self.client_id)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        try:
            with self._lock:
                if client is not self._mqtt or self._state is State.CLOSED:
                    return
                refused = [code.is_failure for code in reason_codes]
                self._apply(self._session.on_suback(mid, refused, now=time.monotonic()))
        except Exception:
            logger.exception("%s: error while handling a subscription", self.client_id)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        try:
            with self._lock:
                if client is not self._mqtt:
                    return
                if self._state is State.CONNECTING and self._first_connack is None:
                    self._first_connection_lost = True
                was_connected = self._session.connected
                self._session.on_disconnected()
                self._changed.notify_all()
                if was_connected and self._state is State.OPEN:
                    logger.warning(
                        "%s: disconnected (%s)%s",
                        self.client_id,
                        reason_code,
                        "; reconnecting" if self._reconnect else "",
                    )
        except Exception:
            logger.exception("%s: error while handling the disconnection", self.client_id)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        log_refused_publish(self.client_id, reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            item = incoming(
                client_id=self.client_id,
                topics=self._topics,
                inbox=self._inbox,
                topic=message.topic,
                payload=message.payload,
            )
            if item is None:
                return
            with self._lock:
                if client is not self._mqtt or self._state is State.CLOSED:
                    return
                effects = feed(self._session, item, client_id=self.client_id, now=time.monotonic())
                if effects is None:
                    return
                self._apply(effects)
                cursor = self._session.cursor
            if effects.cursor_advanced:
                self._persist(cursor)
        except Exception:
            logger.exception("%s: error while handling a message", self.client_id)


_paho_logger = logging.getLogger(f"{__name__}.paho")


def log_refused_publish(client_id: str, reason_code: ReasonCode) -> None:
    """Log an MQTT 5 PUBACK that refused a command (not authorized, quota exceeded, payload format
    invalid; a 3.1.1 PUBACK never refuses).

    The server also answers the command with an `error` event on the inbox, which is what the calls
    wait for and act on, so here the refusal is only worth a line in the log.
    """
    if reason_code.is_failure:
        logger.warning("%s: the server refused a command (PUBACK): %s", client_id, reason_code)


def _log_paho(client: mqtt.Client, userdata: Any, level: int, message: str) -> None:
    """paho's own log, at DEBUG (it reports ordinary disconnections as errors; the SDK logs what matters)."""
    _paho_logger.debug("%s", message)


def _stop(client: mqtt.Client) -> None:
    """Disconnect and stop paho's network thread.

    Never call it with the client's lock held: the network thread may be waiting for that lock.
    """
    try:
        client.disconnect()
    except Exception:  # best effort while shutting down
        logger.debug("disconnect failed while stopping", exc_info=True)
    client.loop_stop()
