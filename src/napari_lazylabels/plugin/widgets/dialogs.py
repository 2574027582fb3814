"""Questions to the user (kept in one place so tests can answer them)."""

from __future__ import annotations

from qtpy.QtWidgets import QMessageBox


def ask_overwrite(parent, what: str) -> bool:
    """Ask before replacing anything; True only on an explicit Yes.

    Tests answer by monkeypatching ``QMessageBox.question``.
    """
    answer = QMessageBox.question(parent, "Replace?", f"{what} exists already. Replace it?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
