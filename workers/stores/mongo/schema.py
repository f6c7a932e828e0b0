"""Collections and indexes of the MongoDB store: what each document holds, and the indexes made at start.

``users``          {_id: user, created_at, inbox_seq, last_seen, disabled}; ``inbox_seq`` is the
                   user's last inbox cursor, bumped with ``$inc`` in the transaction that appends.
``credentials``    {_id: int, user, kind, secret_hash, created_at, device?}; a token with
                   ``device`` logs in only as ``<user>/<device>``
``devices``        {_id: "<user>/<device>", user, device, first_seen, last_seen, connected_at,
                   node, platform, signed_out_at}; ``node`` is where it is connected (None: offline)
``counters``       {_id: name, n}: integer ids for ``credentials`` and ``sms_outbox``
``conversations``  {_id: conversation, last_seq, timer?, timer_by?, timer_at?}: the
                   per-conversation message seq; ``timer`` the disappearing-message timer (seconds)
                   when it is on (see timers)
``messages``       {_id, conversation, seq, sender, recipient, command_id, text, created_at,
                   targets, reached: {delivered, read}, media?, media_keys?}; ``targets`` is the
                   number of recipients and ``reached`` how many of them are at that status or past
                   it (the group aggregate); see media for the media fields; a message deleted
                   for everyone has ``deleted_at`` and ``deleted_by``, an empty ``text`` and no
                   media fields (see deletion); an edited one ``edited_at`` (its latest edit,
                   ``text`` the latest text) and ``edit_ids`` (the edits' command ids, see edits);
                   ``hidden_for``: the users who deleted it for themselves (see hides); a reply
                   has ``reply_to`` (the quoted message id) and ``reply`` (its quote); a forward
                   ``forwarded: true``, ``forwarded_from`` and ``shared_keys`` (the objects of its
                   media, owned by the message it copies; see media); one sent under a timer
                   ``expires_at`` until the sweeper expires it (see timers); ``terms``: the words
                   of its text, for search (see search), absent when it has none
``receipts``       {message_id, user, status, created_at, delivered_at, read_at}: one per recipient
``inbox``          {user, cursor, kind, message_id, payload, created_at}: the per-user event log
``groups``         {_id, name, created_by, created_at, version, members: [{user, role, joined_at}],
                   settings?: {description, icon, only_admins_send, approval}, invite?: {hash,
                   expires_at, by, at}, requests?: [{user, at}]} with the members in join order
                   (settings, invite and requests: see group_settings)
``push_tokens``    {_id: token, user, platform, preview, created_at}
``phones``         {_id: user, phone}
``notify_state``   {_id: user, push_due, sms_due, pending: [message ids], sms_until}
``sms_outbox``     {_id: int, user, phone, body, created_at}
``profiles``       {_id: user, name, about, avatar, avatar_key, updated_at}: ``avatar`` is the wire
                   object of the avatar image, ``avatar_key`` its object key (who may download it)
``reactions``      {message_id, user, emoji, command_id, updated_at}: one per user who reacts to a
                   message (see reactions); none for a message deleted for everyone
``chat_members``   {_id: "<user>|<conversation>", user, conversation, read_seq, from_seq, until_seq,
                   joined_at}: a user's place in a conversation (see chat_rows); ``conversations``
                   documents also hold ``last_at``, the time of their last message (set by the same
                   update that bumps ``last_seq``)
``inbox_pruned``   {_id: user, up_to}: the highest cursor of the user's inbox retention pruned
``retention_state`` {_id: name, value, until}: where each retention sweep is, and the lease of
                   the process that prunes (see retention)
``privacy``, ``group_invitations``: see privacy_data
``blocks``         {blocker, blocked, created_at}: who blocks whom (see blocks)
``block_commands`` {_id: "<user>/<command id>"}: the block and unblock commands that changed something
``mqtt_sessions``  {_id: "<user>/<device>", user, device, acked, sent, expires_at}: a device's
                   persistent MQTT session (see mqtt_sessions): every inbox event up to ``acked``
                   was acknowledged, up to ``sent`` sent; deleted unused after ``expires_at``
``reports``        {_id: int, reporter, user, reason, messages, command_id, created_at}:
                   ``messages`` are copies of the reported messages as the reporter saw them
"""

from __future__ import annotations

from typing import Final

from pymongo import ASCENDING, IndexModel

from client_sdk.contract import Status

__all__ = ["COLLECTIONS", "INDEXES", "REACHED", "ROLE_ADMIN", "ROLE_MEMBER"]

ROLE_MEMBER: Final = "member"
ROLE_ADMIN: Final = "admin"

REACHED: Final = {Status.DELIVERED: "delivered", Status.READ: "read"}
"""The counter in a message's ``reached`` of each status past ``sent``."""

COLLECTIONS: Final = (
    "users",
    "credentials",
    "counters",
    "conversations",
    "messages",
    "receipts",
    "inbox",
    "groups",
    "push_tokens",
    "phones",
    "notify_state",
    "sms_outbox",
    "profiles",
    "devices",
    "reactions",
    "chat_members",
    # retention
    "inbox_pruned",
    "retention_state",
    "privacy",  # see privacy_data
    "group_invitations",
    "group_invitation_answers",
    "blocks",
    "block_commands",
    "reports",
    "mqtt_sessions",
)

INDEXES: Final[dict[str, list[IndexModel]]] = {
    "credentials": [IndexModel([("user", ASCENDING)], name="user")],
    "messages": [
        IndexModel([("sender", ASCENDING), ("command_id", ASCENDING)], name="sender_command", unique=True),
        IndexModel([("conversation", ASCENDING), ("seq", ASCENDING)], name="conversation_seq", unique=True),
        IndexModel([("media_keys", ASCENDING)], name="media_keys", unique=True, sparse=True),
        IndexModel([("shared_keys", ASCENDING)], name="shared_keys", sparse=True),
        IndexModel([("reply_to", ASCENDING)], name="reply_to", sparse=True),
        # disappearing messages: only those not expired yet have the field (see timers)
        IndexModel([("expires_at", ASCENDING)], name="expires_at", sparse=True),
        # search (see search): the words of each message with text
        IndexModel([("terms", ASCENDING)], name="terms", sparse=True),
    ],
    "receipts": [
        IndexModel([("message_id", ASCENDING), ("user", ASCENDING)], name="message_user", unique=True),
        IndexModel(
            [("user", ASCENDING), ("status", ASCENDING), ("created_at", ASCENDING)], name="user_status"
        ),
    ],
    "inbox": [
        IndexModel([("user", ASCENDING), ("cursor", ASCENDING)], name="user_cursor", unique=True),
        IndexModel([("user", ASCENDING), ("message_id", ASCENDING)], name="user_message"),
    ],
    "groups": [
        IndexModel([("members.user", ASCENDING)], name="member"),
        # a join by invite code finds its group by the code's hash; an icon's download, by its key
        IndexModel([("invite.hash", ASCENDING)], name="invite", sparse=True),
        IndexModel([("settings.icon.key", ASCENDING)], name="icon_key", sparse=True),
    ],
    "push_tokens": [IndexModel([("user", ASCENDING), ("created_at", ASCENDING)], name="user")],
    "sms_outbox": [IndexModel([("user", ASCENDING)], name="user")],
    "profiles": [IndexModel([("avatar_key", ASCENDING)], name="avatar_key", sparse=True)],
    "reactions": [
        IndexModel([("message_id", ASCENDING), ("user", ASCENDING)], name="message_user", unique=True)
    ],
    "blocks": [
        IndexModel([("blocker", ASCENDING), ("blocked", ASCENDING)], name="blocker_blocked", unique=True)
    ],
    "reports": [
        IndexModel([("reporter", ASCENDING), ("command_id", ASCENDING)], name="reporter_command", unique=True)
    ],
    "mqtt_sessions": [IndexModel([("expires_at", ASCENDING)], name="expires_at")],
    "chat_members": [IndexModel([("user", ASCENDING)], name="user")],
    "devices": [
        IndexModel([("user", ASCENDING), ("first_seen", ASCENDING)], name="user"),
        IndexModel([("signed_out_at", ASCENDING)], name="signed_out_at", sparse=True),
        IndexModel([("node", ASCENDING)], name="node", sparse=True),
    ],
}
