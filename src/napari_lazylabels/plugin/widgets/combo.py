"""Keep a layer picker (a QComboBox of layer names) in step with the viewer."""

from __future__ import annotations

from typing import Sequence


def set_combo_items(combo, names: Sequence[str]) -> bool:
    """Show ``names`` in ``combo``, keeping the current choice when it is still there.

    Returns whether the items changed. Does nothing (and emits nothing) when
    the combo already shows exactly ``names``; otherwise the refill is done
    with the combo's signals blocked, so listeners see no spurious changes.
    """
    names = list(names)
    if names == [combo.itemText(i) for i in range(combo.count())]:
        return False
    current = combo.currentText()
    combo.blockSignals(True)
    try:
        combo.clear()
        combo.addItems(names)
        if current in names:
            combo.setCurrentText(current)
    finally:
        combo.blockSignals(False)
    return True
