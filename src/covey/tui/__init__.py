"""`covey chat`: the terminal UI (Textual), handed an orchestrator."""

from covey.tui.app import ChatApp

__all__ = ["ChatApp"]
