"""Authentication: MQTT username = user id, password = a token or password of that user.

The client id must be ``<user>/<device>``. Credentials are checked against their hashes in the
store on a thread, never on the event loop (Argon2 takes tens of milliseconds), the logins waiting
at the same time a batch per thread hop (``CredentialChecks``). Deny by default.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from amqtt.session import Session

from broker.mqtt.connection_state import ConnectionState
from broker.mqtt.mqtt5 import Reason
from broker.mqtt.plugins.base import Authenticator
from broker.throttle import CredentialChecks, LoginThrottle, check_login
from client_sdk.contract import is_valid_user_id

__all__ = ["AuthPlugin", "CredentialCheck", "CredentialChecksMany", "parse_client_id"]

log = logging.getLogger(__name__)

CredentialCheck = Callable[[str, str, str], bool]
"""``check(user, secret, device)``: blocking; True when the secret lets ``<user>/<device>`` in."""
CredentialChecksMany = Callable[[list[tuple[str, str, str | None]]], list[bool]]
"""``check_many([(user, secret, device), ...])``: blocking; ``check`` of each, in order."""


def parse_client_id(client_id: str | None, user: str) -> str | None:
    """The device part of ``<user>/<device>``, or None when the client id does not fit ``user``."""
    if not client_id:
        return None
    owner, sep, device = client_id.partition("/")
    if owner != user or not sep or not is_valid_user_id(device):
        return None
    return device


class AuthPlugin(Authenticator):
    @dataclass(frozen=True)
    class Config:
        """No options: credentials live in the store."""

    def __init__(
        self,
        config: Config | None = None,
        *,
        check: CredentialCheck,
        check_many: CredentialChecksMany | None = None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        """``check_many``: the logins waiting at once checked together (``CredentialChecks``);
        ``throttle``: failed logins slow down the next ones (shared with the media endpoint)."""
        self.config = config or AuthPlugin.Config()
        self._check = CredentialChecks(check, many=check_many)
        self._throttle = throttle

    async def authenticate(self, session: Session) -> bool | None:
        user, secret, address = session.username, session.password, session.remote_address
        throttle = self._throttle
        if throttle is not None and throttle.address_locked(address):
            log.warning("refused a login from %s: too many failed logins from there", address)
            return _refused(session, Reason.SERVER_BUSY)  # for now: try again later
        if not is_valid_user_id(user) or not secret:
            return _refused(session, Reason.BAD_CREDENTIALS)
        assert user is not None
        device = parse_client_id(session.client_id, user)
        if device is None:
            log.info("refused %r: client id must be '%s/<device>'", session.client_id, user)
            return _refused(session, Reason.CLIENT_ID_NOT_VALID)
        ok = await check_login(self._check, throttle, user, secret, address, device=device)
        if not ok:
            log.info("refused %s from %s: bad credentials", user, address)
            return _refused(session, Reason.BAD_CREDENTIALS)
        return ok


def _refused(session: Session, reason: Reason) -> bool:
    """False, with why (an MQTT 5 CONNACK reason code) on the session for the CONNACK."""
    if isinstance(session, ConnectionState):
        session.refusal = reason
    return False
