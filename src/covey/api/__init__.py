"""The OpenAI-compatible HTTP front: `covey serve` (create_app builds the ASGI app from an orchestrator)."""
