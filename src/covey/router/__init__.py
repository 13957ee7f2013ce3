"""The task router: which specialist answers each task (classifier, features, head, MiniLM, eval)."""
