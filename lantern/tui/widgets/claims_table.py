"""The claims of one answer, a row each: claim, confidence bar, verdict, source:lines.

Rows arrive as the verifier settles each claim; a rewrite round's claims (a higher draft) replace
the earlier round's. When the answer is final the table shows its kept claims and then its
dropped ones, struck through. Selecting a row (Enter or a click) posts `ClaimsTable.Opened`,
which the App answers by opening the source at the quoted lines. The claim column takes the width
the other columns leave, and its text wraps.
"""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from lantern.tui.format import VERDICT_STYLES, confidence_bar, source_label, verdict_of

FIXED = {"confidence": 11, "verdict": 13, "source:lines": 22}
PADDING = 2  # cells DataTable puts around each column


class ClaimsTable(DataTable):
    class Opened(Message):
        def __init__(self, claim) -> None:
            super().__init__()
            self.claim = claim

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.rows_shown: list[tuple[object, bool]] = []  # (claim, dropped) in row order
        self.draft = 0

    @property
    def claims(self) -> list:
        return [claim for claim, _ in self.rows_shown]

    def on_mount(self) -> None:
        self.display = False  # until the first claim: an empty header says nothing
        self.add_column("claim", width=30, key="claim")
        for name, width in FIXED.items():
            self.add_column(name, width=width, key=name)

    def on_resize(self) -> None:
        if self._fit(self.size.width):
            self._redraw()  # row heights follow the claim column's wrapping

    def _fit(self, width: int) -> bool:
        """Give the claim column what the others leave of `width`; True when that changed it."""
        claim_width = max(20, width - sum(FIXED.values()) - PADDING * (len(FIXED) + 1) - 1)
        changed = claim_width != self.columns["claim"].width
        self.columns["claim"].width = claim_width
        return changed

    def _fit_parent(self) -> None:
        """Size the claim column before rows go in (a hidden table has no size of its own yet)."""
        if self.parent is not None and self.parent.size.width:
            self._fit(self.parent.size.width - self.styles.margin.width)

    def add_claim(self, claim, draft: int = 0) -> None:
        if draft != self.draft:
            self.rows_shown, self.draft = [], draft
            self.clear()
        if not self.rows_shown:
            self._fit_parent()
        self.rows_shown.append((claim, False))
        self._add_row(claim, False)
        self.display = True

    def show(self, kept: list, dropped: list) -> None:
        self.rows_shown = [(c, False) for c in kept] + [(c, True) for c in dropped]
        self._fit_parent()
        self._redraw()
        self.display = bool(self.rows_shown)

    def _redraw(self) -> None:
        self.clear()
        for claim, dropped in self.rows_shown:
            self._add_row(claim, dropped)

    def _add_row(self, claim, dropped: bool) -> None:
        verdict = verdict_of(claim)
        text = Text(claim.claim, style="strike dim" if dropped else "")
        label = Text(("✗ " if dropped else "") + verdict, style=VERDICT_STYLES.get(verdict, ""))
        source = source_label(claim.source, claim.start_line, claim.end_line, FIXED["source:lines"])
        self.add_row(text, confidence_bar(claim.confidence, verdict, width=6), label, source, height=None)

    def selected(self):
        """The claim under the cursor (the first one when the cursor was never moved)."""
        claims = self.claims
        return claims[min(max(self.cursor_row, 0), len(claims) - 1)] if claims else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Opened(self.claims[event.cursor_row]))
