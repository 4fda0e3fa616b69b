"""Template hygiene the template engine does not check for us."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_comment_spans_lines():
    """Django's ``{# … #}`` comments are one line: one left open prints itself on the page."""
    open_comments = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("templates", "loyalty/templates", "rewards", "accounts")
        for path in (ROOT / folder).rglob("*.html")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if line.count("{#") > line.count("#}")
    ]
    assert open_comments == []
