"""``liquid-edge report OUT``: one self-contained page (HTML, or Markdown with PNG files) about a compiled output.

:mod:`.records` keeps verification results in the output folder (written by ``verify``), :mod:`.collect` gathers
everything the page shows, :mod:`.plots` draws the figures, :mod:`.render` writes HTML or Markdown.
"""
