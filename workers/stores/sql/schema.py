"""Tables of the SQL store (SQLAlchemy Core); the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
)

metadata = MetaData()

USER_ID = String(64)

users = Table(
    "users",
    metadata,
    Column("id", USER_ID, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("inbox_seq", BigInteger, nullable=False, default=0),
    Column("last_seen", Float, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", USER_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
)

device_tokens = Table(
    "device_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", USER_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("device", USER_ID, nullable=False),
    Column("secret_hash", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_device_tokens_user_device", "user_id", "device"),
)
"""Tokens that log in only as ``<user>/<device>`` (a table of their own: ``credentials`` stays as
it was, and a sign-out deletes exactly these)."""

devices = Table(
    "devices",
    metadata,
    Column("user_id", USER_ID, nullable=False),
    Column("device", USER_ID, nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("connected_at", Float, nullable=True),
    Column("node", String(128), nullable=True),
    Column("platform", String(16), nullable=True),
    Column("signed_out_at", Float, nullable=True),
    PrimaryKeyConstraint("user_id", "device", name="pk_devices"),
    Index("ix_devices_signed_out", "signed_out_at"),
    Index("ix_devices_node", "node"),
)
"""A user's devices: ``node`` is the node it is connected to (NULL: offline), ``connected_at`` its
last connect, ``signed_out_at`` its last sign-out (the nodes' sweep reads the recent ones)."""

conversations = Table(
    "conversations",
    metadata,
    Column("id", String(160), primary_key=True),
    Column("last_seq", BigInteger, nullable=False, default=0),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("conversation_id", String(160), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("sender_id", USER_ID, nullable=False),
    Column("recipient_id", USER_ID, nullable=False),
    Column("command_id", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    UniqueConstraint("sender_id", "command_id", name="uq_messages_sender_command"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", USER_ID, nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("delivered_at", Float, nullable=True),
    Column("read_at", Float, nullable=True),
    PrimaryKeyConstraint("message_id", "user_id", name="pk_receipts"),
    # on SQLite the rows are the primary key's B-tree: a rowid table was two B-trees, each insert
    # wrote both and each receipt read both; an older database is rebuilt so at start (sqlite_layout)
    sqlite_with_rowid=False,
)

inbox = Table(
    "inbox",
    metadata,
    Column("user_id", USER_ID, nullable=False),
    Column("cursor", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("message_id", String(32), nullable=True),
    Column("payload", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("user_id", "cursor", name="pk_inbox"),
    # finds the ``sent`` entry of a resent message; only ``sent`` entries are in it, so the other
    # two entries in three (copies, receipts) cost no index insert on the hot path. Keyed by the
    # message alone (one ``sent`` entry each): ids grow with time, so a batch's entries go to the
    # last few pages of the index; keyed by user first (``ix_inbox_user_message``, dropped at
    # start, base.create_schema) they went to a page per sender
    Index(
        "ix_inbox_sent_message",
        "message_id",
        sqlite_where=literal_column("kind") == literal_column("'sent'"),
        postgresql_where=literal_column("kind") == literal_column("'sent'"),
    ),
)

groups = Table(
    "groups",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("created_by", USER_ID, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("version", BigInteger, nullable=False, default=1),
)

ROLE_MEMBER = 1
ROLE_ADMIN = 2

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", String(64), ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", USER_ID, nullable=False),
    Column("role", SmallInteger, nullable=False),
    Column("joined_at", Float, nullable=False),
    Column("join_order", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "user_id", name="pk_group_members"),
    Index("ix_group_members_user", "user_id"),
)

push_tokens = Table(
    "push_tokens",
    metadata,
    Column("token", String(512), primary_key=True),
    Column("user_id", USER_ID, nullable=False, index=True),
    Column("platform", String(16), nullable=False),
    Column("preview", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
)

user_phones = Table(
    "user_phones",
    metadata,
    Column("user_id", USER_ID, primary_key=True),
    Column("phone", String(20), nullable=False),
)

notify_state = Table(
    "notify_state",
    metadata,
    Column("user_id", USER_ID, primary_key=True),
    Column("push_due", Boolean, nullable=False, default=False),
    Column("sms_due", Boolean, nullable=False, default=False),
    Column("pending", Text, nullable=False, default="[]"),
    Column("sms_until", Float, nullable=False, default=0.0),
)

sms_outbox = Table(
    "sms_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", USER_ID, nullable=False),
    Column("phone", String(20), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

message_media = Table(
    "message_media",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("info", Text, nullable=False),
)
"""The wire ``media`` object of a message with an image or video."""

media_objects = Table(
    "media_objects",
    metadata,
    Column("key", String(512), primary_key=True),
    Column(
        "message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False, index=True
    ),
)
"""Every stored object (file, thumbnail) and the message it belongs to: who may download it."""

profiles = Table(
    "profiles",
    metadata,
    Column("user_id", USER_ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), nullable=True),
    Column("about", String(140), nullable=True),
    Column("avatar", Text, nullable=True),
    Column("avatar_key", String(512), nullable=True, index=True),
    Column("updated_at", Float, nullable=False),
)
"""A user's display name, about text and avatar (its wire object, and its key: who may download it)."""

message_deletions = Table(
    "message_deletions",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("deleted_at", Float, nullable=False),
    Column("deleted_by", USER_ID, nullable=False),
)
"""Messages deleted for everyone: when and by whom (``admin`` or a user id); their ``body`` is
empty. A table of its own, not columns of ``messages``: an existing database gets it at start
(``create_schema``) without a migration, and sending a message writes nothing more."""

reactions = Table(
    "reactions",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", USER_ID, nullable=False),
    Column("emoji", String(64), nullable=False),
    Column("command_id", String(64), nullable=False),
    Column("updated_at", Float, nullable=False),
    PrimaryKeyConstraint("message_id", "user_id", name="pk_reactions"),
)
"""Each user's reaction to a message (one emoji), and the command that set it: a resend of that
command changes nothing. A removed reaction has no row; a message deleted for everyone has none."""

message_edits = Table(
    "message_edits",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("command_id", String(64), nullable=False),
    Column("edited_at", Float, nullable=False),
    PrimaryKeyConstraint("message_id", "command_id", name="pk_message_edits"),
)
"""Each edit of a message: its command id (a resent edit is recognised and changes nothing more)
and when; the latest ``edited_at`` is the message's. Only the latest text is kept (in
``messages.body``): older versions are dropped. A row per edit rather than one per message: an
edit resent after a later one must not bring its text back."""

message_hides = Table(
    "message_hides",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", USER_ID, nullable=False),
    Column("hidden_at", Float, nullable=False),
    PrimaryKeyConstraint("message_id", "user_id", name="pk_message_hides"),
)
"""Messages a user deleted for themselves: later changes leave that user's entries as they are."""

message_replies = Table(
    "message_replies",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("reply_to_id", String(32), nullable=False, index=True),
    Column("info", Text, nullable=False),
)
"""Replies: the message each one quotes and its wire ``reply`` object (the quote). Only replies
write here, so a plain message costs nothing more; ``reply_to_id`` finds the quotes of a message
that is deleted (or edited) to rewrite them."""

message_forwards = Table(
    "message_forwards",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("original_id", String(32), nullable=False),
)
"""Forwarded messages and the message each one was forwarded from."""

media_shares = Table(
    "media_shares",
    metadata,
    Column("key", String(512), nullable=False),
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("key", "message_id", name="pk_media_shares"),
    Index("ix_media_shares_message", "message_id"),
)
"""Stored objects a forwarded message uses but does not own (``media_objects`` names the message
of the upload): its sender and recipients may download them too, and they stay in storage while
any message that is not deleted uses them."""

# ---------------------------------------------------------------- group settings and invites
group_settings = Table(
    "group_settings",
    metadata,
    Column("group_id", String(64), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("description", Text, nullable=True),
    Column("icon", Text, nullable=True),
    Column("icon_key", String(512), nullable=True, index=True),
    Column("only_admins_send", Boolean, nullable=False, default=False),
    Column("approval", Boolean, nullable=False, default=False),
)
"""A group's settings, once one is set (no row: all off): its description, its icon (the wire
object, and its key: members may download it), whether only admins may send, whether joining by
an invite link needs an admin's approval."""

group_invites = Table(
    "group_invites",
    metadata,
    Column("group_id", String(64), ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("expires_at", Float, nullable=True),
    Column("created_by", USER_ID, nullable=False),
    Column("created_at", Float, nullable=False),
)
"""A group's invite link (at most one: a new one replaces it, a revoked one is deleted): the
SHA-256 of its code, never the code (see rules.group_settings), and when it expires (None: never)."""

group_requests = Table(
    "group_requests",
    metadata,
    Column("group_id", String(64), ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", USER_ID, nullable=False),
    Column("requested_at", Float, nullable=False),
    PrimaryKeyConstraint("group_id", "user_id", name="pk_group_requests"),
)
"""Requests to join a group that needs approval, until an admin approves or rejects them."""

# ---------------------------------------------------------------- disappearing messages
conversation_timers = Table(
    "conversation_timers",
    metadata,
    Column("conversation_id", String(160), primary_key=True),
    Column("seconds", Integer, nullable=False),
    Column("set_by", USER_ID, nullable=False),
    Column("set_at", Float, nullable=False),
)
"""The disappearing-message timer of each conversation that has one on (``rules.timers``); a
timer turned off has no row, so a conversation without one costs a message nothing to look up
but an index probe that finds nothing."""

message_expiry = Table(
    "message_expiry",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),
)
"""Messages sent under a timer that have not expired yet, and when they do; the sweeper takes the
oldest due ones by the ``expires_at`` index and deletes their rows as it expires them."""


# ---------------------------------------------------------------- chat list and read state
chat_members = Table(
    "chat_members",
    metadata,
    Column("user_id", USER_ID, nullable=False),
    Column("conversation_id", String(160), nullable=False),
    Column("read_seq", BigInteger, nullable=False, default=0),
    Column("from_seq", BigInteger, nullable=False, default=0),
    Column("until_seq", BigInteger, nullable=True),
    Column("joined_at", Float, nullable=False),
    PrimaryKeyConstraint("user_id", "conversation_id", name="pk_chat_members"),
    # on SQLite the rows are kept in key order: a user's chats are read as one range of the table
    sqlite_with_rowid=False,
)
"""A user's place in a conversation (see rules.chats): written at a 1-on-1 conversation's first
message and at each group join or leave, never per message. The chat list is the user's rows
(the primary key's prefix), each joined to its conversation's ``last_seq`` and that message."""

# ---------------------------------------------------------------- persistent MQTT sessions
mqtt_sessions = Table(
    "mqtt_sessions",
    metadata,
    Column("user_id", USER_ID, nullable=False),
    Column("device", USER_ID, nullable=False),
    Column("acked", BigInteger, nullable=False),
    Column("sent", BigInteger, nullable=False),
    Column("expires_at", Float, nullable=False),
    PrimaryKeyConstraint("user_id", "device", name="pk_mqtt_sessions"),
    Index("ix_mqtt_sessions_expires_at", "expires_at"),
)
"""A device's persistent MQTT session: its inbox cursor acknowledged (every event up to ``acked``
was), the highest sent to it, and when it expires unused. No foreign key: a session of a deleted
user expires like any other."""

# ---------------------------------------------------------------- retention
inbox_pruned = Table(
    "inbox_pruned",
    metadata,
    Column("user_id", USER_ID, primary_key=True),
    Column("up_to", BigInteger, nullable=False),
)
"""The highest cursor of each user's inbox that retention pruned: a ``sync`` from before it is
answered ``sync_reset``. No row: nothing pruned. Read only by a sync that finds a gap."""

retention_state = Table(
    "retention_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("until", Float, nullable=False, default=0.0),
)
"""Where each retention sweep is (``inbox``: the last user done; ``messages``: the last
conversation done), and the lease of the process that prunes (``lease``: its name, ``until``), so
that a sweep goes on where it stopped after a restart and only one process prunes at a time."""


# ---------------------------------------------------------------- blocking and reports
blocks = Table(
    "blocks",
    metadata,
    Column("blocker_id", USER_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("blocked_id", USER_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("blocker_id", "blocked_id", name="pk_blocks"),
)
"""Who blocks whom (``rules.blocks``). Every lookup names the blocker (its primary key's first
column): a batch of 1-on-1 messages asks for its recipients, a receipt for its giver."""

block_commands = Table(
    "block_commands",
    metadata,
    Column("user_id", USER_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("command_id", String(64), nullable=False),
    PrimaryKeyConstraint("user_id", "command_id", name="pk_block_commands"),
)
"""The block and unblock commands that changed something: one resent after a later change (its
answer was lost) changes nothing again."""

reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reporter_id", USER_ID, nullable=False),
    Column("user_id", USER_ID, nullable=False),
    Column("reason", Text, nullable=False),
    Column("messages", Text, nullable=False),
    Column("command_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("reporter_id", "command_id", name="uq_reports_command"),
)
"""Reports of users to the operators: ``messages`` is a JSON list of the reported messages as the
reporter saw them (copies: they stay when the messages change or go). No foreign keys: a report
outlives the accounts it names."""
