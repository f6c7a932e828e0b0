"""Collections and indexes of the MongoDB store: what each document holds, and the indexes made at start.

``users``          {_id: user, created_at, inbox_seq, last_seen, disabled}; ``inbox_seq`` is the
                   user's last inbox cursor, bumped with ``$inc`` in the transaction that appends.
``credentials``    {_id: int, user, kind, secret_hash, created_at, device?}; a token with
                   ``device`` logs in only as ``<user>/<device>``
``devices``        {_id: "<user>/<device>", user, device, first_seen, last_seen, connected_at,
                   node, platform, signed_out_at}; ``node`` is where it is connected (None: offline)
``counters``       {_id: name, n}: integer ids for ``credentials`` and ``sms_outbox``
``conversations``  {_id: conversation, last_seq}: the per-conversation message seq
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
                   media, owned by the message it copies; see media); ``terms``: the words of its
                   text, for search (see search), absent when it has none
``receipts``       {message_id, user, status, created_at, delivered_at, read_at}: one per recipient
``inbox``          {user, cursor, kind, message_id, payload, created_at}: the per-user event log
``groups``         {_id, name, created_by, created_at, version, members: [{user, role, joined_at}]}
                   with the members in join order
``push_tokens``    {_id: token, user, platform, preview, created_at}
``phones``         {_id: user, phone}
``notify_state``   {_id: user, push_due, sms_due, pending: [message ids], sms_until}
``sms_outbox``     {_id: int, user, phone, body, created_at}
``profiles``       {_id: user, name, about, avatar, avatar_key, updated_at}: ``avatar`` is the wire
                   object of the avatar image, ``avatar_key`` its object key (who may download it)
``reactions``      {message_id, user, emoji, command_id, updated_at}: one per user who reacts to a
                   message (see reactions); none for a message deleted for everyone
``inbox_pruned``   {_id: user, up_to}: the highest cursor of the user's inbox retention pruned
``retention_state`` {_id: name, value, until}: where each retention sweep is, and the lease of
                   the process that prunes (see retention)
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
    # retention (issue 23)
    "inbox_pruned",
    "retention_state",
)

INDEXES: Final[dict[str, list[IndexModel]]] = {
    "credentials": [IndexModel([("user", ASCENDING)], name="user")],
    "messages": [
        IndexModel([("sender", ASCENDING), ("command_id", ASCENDING)], name="sender_command", unique=True),
        IndexModel([("conversation", ASCENDING), ("seq", ASCENDING)], name="conversation_seq", unique=True),
        IndexModel([("media_keys", ASCENDING)], name="media_keys", unique=True, sparse=True),
        IndexModel([("shared_keys", ASCENDING)], name="shared_keys", sparse=True),
        IndexModel([("reply_to", ASCENDING)], name="reply_to", sparse=True),
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
    "groups": [IndexModel([("members.user", ASCENDING)], name="member")],
    "push_tokens": [IndexModel([("user", ASCENDING), ("created_at", ASCENDING)], name="user")],
    "sms_outbox": [IndexModel([("user", ASCENDING)], name="user")],
    "profiles": [IndexModel([("avatar_key", ASCENDING)], name="avatar_key", sparse=True)],
    "reactions": [
        IndexModel([("message_id", ASCENDING), ("user", ASCENDING)], name="message_user", unique=True)
    ],
    "devices": [
        IndexModel([("user", ASCENDING), ("first_seen", ASCENDING)], name="user"),
        IndexModel([("signed_out_at", ASCENDING)], name="signed_out_at", sparse=True),
        IndexModel([("node", ASCENDING)], name="node", sparse=True),
    ],
}
