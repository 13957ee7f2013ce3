"""Conversations that last: every turn in a small SQLite store shared by `ask`, the chat UI and the API."""

from covey.history.store import ConversationStore, HistoryStore, Turn

__all__ = ["ConversationStore", "HistoryStore", "Turn"]
