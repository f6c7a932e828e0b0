"""The Twilio SMS provider against a local server speaking Twilio's Messages API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.settings import PushSettings
from tests.fakes import FakeTwilio
from workers.notify.errors import Rejected, Transient
from workers.notify.sms import TwilioSms


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    yield server
    server.close()


def provider(twilio: FakeTwilio, token: str = FakeTwilio.TOKEN) -> TwilioSms:
    return TwilioSms(account_sid=FakeTwilio.SID, auth_token=token, sender="+15550009999", base_url=twilio.url)


def test_an_sms_is_posted_with_basic_auth(twilio: FakeTwilio) -> None:
    provider(twilio).send(user="bob", phone="+15550000001", body="mqchat: hello")

    assert twilio.messages == [{"To": "+15550000001", "From": "+15550009999", "Body": "mqchat: hello"}]


def test_server_errors_are_transient_and_refusals_are_not(twilio: FakeTwilio) -> None:
    twilio.statuses = [503, 429, 400]
    with pytest.raises(Transient):
        provider(twilio).send(user="bob", phone="+1555", body="x")
    with pytest.raises(Transient):
        provider(twilio).send(user="bob", phone="+1555", body="x")
    with pytest.raises(Rejected):
        provider(twilio).send(user="bob", phone="+1555", body="x")
    with pytest.raises(Rejected):
        provider(twilio, token="wrong").send(user="bob", phone="+1555", body="x")
    assert twilio.messages == []


def test_an_unreachable_provider_is_transient() -> None:
    closed = TwilioSms(
        account_sid="AC", auth_token="t", sender="+1", base_url="http://127.0.0.1:9", timeout=2
    )
    with pytest.raises(Transient):
        closed.send(user="bob", phone="+1555", body="x")


def test_the_twilio_provider_needs_its_credentials() -> None:
    with pytest.raises(ValueError, match="twilio_account_sid"):
        PushSettings(sms_provider="twilio")
    assert (
        PushSettings(
            sms_provider="twilio", twilio_account_sid="AC", twilio_auth_token="t", twilio_from="+1555"
        ).sms_provider
        == "twilio"
    )
