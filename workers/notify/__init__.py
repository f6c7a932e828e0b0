"""Notifications for users with no connected device: push through FCM (which also reaches iOS),
SMS as the fallback. See ``service.py`` for when each is sent."""
