"""Push through Firebase Cloud Messaging's HTTP v1 API with pyfcm (FCM also delivers to iOS)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import requests
from pyfcm import FCMNotification
from pyfcm.errors import (
    AuthenticationError,
    FCMError,
    FCMNotRegisteredError,
    FCMSenderIdMismatchError,
    FCMServerError,
    InvalidDataError,
)
from requests.adapters import HTTPAdapter

from workers.notify.errors import Rejected, TokenGone, Transient

__all__ = ["FcmPusher"]

log = logging.getLogger(__name__)


class FcmPusher:
    """Sends one notification to one device token; errors converted at this boundary."""

    def __init__(
        self, *, service_account: Path, project_id: str | None, endpoint: str, timeout: float = 10.0
    ) -> None:
        token_lock = threading.Lock()

        class _Fcm(FCMNotification):  # type: ignore[misc]
            FCM_END_POINT_BASE = endpoint.rstrip("/")

            def _get_access_token(self) -> Any:
                # pyfcm shares one google-auth credential between threads, and refreshing it is
                # not thread-safe: two workers refreshing at once could send "Bearer None"
                with token_lock:
                    return super()._get_access_token()

        # no retries inside requests: a 5xx becomes Transient and the job retries with backoff
        self._fcm = _Fcm(
            service_account_file=str(service_account),
            project_id=project_id,
            adapter=HTTPAdapter(max_retries=0),
        )
        self._timeout = timeout

    def send(
        self, *, token: str, title: str, body: str, data: dict[str, str], collapse_key: str
    ) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._fcm.notify(
                fcm_token=token,
                notification_title=title,
                notification_body=body,
                data_payload=data,
                android_config={"collapse_key": collapse_key, "priority": "high"},
                apns_config={"headers": {"apns-collapse-id": collapse_key}},
                timeout=self._timeout,
            )
            return result
        except FCMNotRegisteredError as exc:
            raise TokenGone(str(exc)) from exc
        except FCMServerError as exc:
            raise Transient(str(exc)) from exc
        except requests.RequestException as exc:
            raise Transient(f"FCM unreachable: {exc}") from exc
        except (AuthenticationError, FCMSenderIdMismatchError, InvalidDataError) as exc:
            raise Rejected(f"{type(exc).__name__}: {exc}") from exc
        except FCMError as exc:
            raise Rejected(str(exc)) from exc
