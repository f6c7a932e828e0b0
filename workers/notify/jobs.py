"""The notification jobs on Dramatiq's notify queue, and the Notifier built from the settings."""

from __future__ import annotations

from typing import Any

import dramatiq

from config.settings import PushSettings
from workers.jobs import NOTIFY_QUEUE, enqueue
from workers.locator import Locator
from workers.notify.service import Notifier, Pusher
from workers.notify.sms import OutboxSms, SmsProvider, TwilioSms
from workers.stores import Notifications

__all__ = ["build_notifier"]


def _actor_name(job: str) -> str:
    return f"mqchat_notify_{job}"


def build_notifier(
    settings: PushSettings, *, store: Notifications, locator: Locator, broker: dramatiq.Broker
) -> Notifier:
    """A Notifier whose jobs run on ``broker``'s notify queue (the actors are declared here)."""
    pusher: Pusher | None = None
    if settings.fcm_service_account is not None:
        from workers.notify.fcm import FcmPusher

        pusher = FcmPusher(
            service_account=settings.fcm_service_account,
            project_id=settings.fcm_project_id,
            endpoint=settings.fcm_endpoint,
        )
    sms: SmsProvider
    if settings.sms_provider == "twilio":
        sms = TwilioSms(
            account_sid=settings.twilio_account_sid or "",
            auth_token=settings.twilio_auth_token or "",
            sender=settings.twilio_from or "",
            base_url=settings.twilio_base_url,
        )
    else:
        sms = OutboxSms(store)

    def schedule(job: str, args: tuple[Any, ...], delay_ms: int) -> None:
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=NOTIFY_QUEUE, actor_name=_actor_name(job), args=args, kwargs={}, options={}
        )
        enqueue(broker, message, delay=delay_ms or None)

    notifier = Notifier(
        store=store,
        locator=locator,
        pusher=pusher,
        sms=sms,
        schedule=schedule,
        collapse_seconds=settings.collapse_seconds,
        sms_delay=settings.sms_delay,
        sms_preview=settings.preview,
    )
    for job in Notifier.JOBS:
        dramatiq.Actor(
            getattr(notifier, job),
            broker=broker,
            actor_name=_actor_name(job),
            queue_name=NOTIFY_QUEUE,
            priority=0,
            options={},
        )
    return notifier
