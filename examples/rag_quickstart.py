"""Use covey's retrieval store on its own: index a folder, search it, build a grounded prompt.

    .venv/bin/python examples/rag_quickstart.py PATH [QUESTION]

Works offline with the packaged all-MiniLM-L6-v2. State goes to a temporary folder here; covey
itself keeps collections in DATA_DIR/rag/<collection>.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from covey.rag import Store, format_sources, ground
from covey.rag.grounding import approx_tokens


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    question = sys.argv[2] if len(sys.argv) > 2 else "How do I search my documents?"
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp), "example") as store:
        report = store.add([folder], include=["*.md", "*.txt", "*.py", "*.html", "*.pdf"])
        print(f"{len(report.added)} files, {report.chunks_added} chunks; {len(report.skipped)} skipped")
        for item in report.skipped:
            print(f"  skipped {item.path}: {item.reason}")
        passages = store.search(question, k=5)
        for p in passages:
            print(f"{p.score:.3f}  {p.label}")
        grounded = ground(question, passages, budget_tokens=1500, count_tokens=approx_tokens)
        if not grounded.found:
            print(grounded.reply)
            return
        print("\nmessages for the model:")
        for m in grounded.messages:
            print(f"--- {m.role}\n{m.content}")
        print("\nsources:\n" + format_sources(grounded.citations))


if __name__ == "__main__":
    main()
