"""SMS providers: an outbox that only records (the default, so nothing is sent by accident) and
Twilio's Messages API, the most widely used SMS HTTP API."""

from __future__ import annotations

import logging
import time
from typing import Protocol

import requests

from workers.notify.errors import Rejected, Transient
from workers.stores import Notifications

__all__ = ["OutboxSms", "SmsProvider", "TwilioSms"]

log = logging.getLogger(__name__)


class SmsProvider(Protocol):
    def send(self, *, user: str, phone: str, body: str) -> None: ...


class OutboxSms:
    """Records each SMS in the store's ``sms_outbox`` table instead of sending it."""

    def __init__(self, store: Notifications) -> None:
        self._store = store

    def send(self, *, user: str, phone: str, body: str) -> None:
        self._store.record_sms(user=user, phone=phone, body=body, now=time.time())
        log.info("SMS to %s recorded in the outbox", user)


class TwilioSms:
    """POST /2010-04-01/Accounts/{sid}/Messages.json with basic auth (To, From, Body)."""

    def __init__(
        self, *, account_sid: str, auth_token: str, sender: str, base_url: str, timeout: float = 10.0
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = (account_sid, auth_token)
        self._sender = sender
        self._timeout = timeout

    def send(self, *, user: str, phone: str, body: str) -> None:
        try:
            response = requests.post(
                self._url,
                auth=self._auth,
                data={"To": phone, "From": self._sender, "Body": body},
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise Transient(f"SMS provider unreachable: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise Transient(f"SMS provider answered {response.status_code}")
        if response.status_code >= 400:
            raise Rejected(f"SMS provider refused ({response.status_code}): {response.text[:200]}")
        log.info("SMS to %s sent", user)
