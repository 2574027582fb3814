"""A light live loss curve per task, drawn with QPainter (cheap enough to redraw on every update).

Each task's curve takes the colour of the regime that trains it (the registry);
the total is light grey.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from ...engine.regimes import registry

TOTAL_COLOUR = (220, 220, 220)
_FALLBACK = [(0, 158, 115), (240, 228, 66), (213, 94, 0)]
#: Points drawn per curve at most (curves are decimated beyond this).
MAX_POINTS = 400


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` finite values at each point (NaN where there is none)."""
    values = np.asarray(values, float)
    ok = np.isfinite(values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, values, 0.0))])
    ccnt = np.concatenate([[0], np.cumsum(ok)])
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    cnt = ccnt[idx] - ccnt[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (csum[idx] - csum[lo]) / np.maximum(cnt, 1), np.nan)



def axis_label_width(metrics, texts) -> int:
    """Width (px) for the y-axis labels ``texts`` in ``metrics``' font, at least 30."""
    return max(30, *(metrics.horizontalAdvance(t) + 2 for t in texts))

class LossPlot(QWidget):
    """Loss per task over steps, log scale, running mean of ``window`` steps."""

    def __init__(self, parent=None, window: int = 10):
        super().__init__(parent)
        self.window = window
        self._steps: dict[str, list[int]] = {}
        self._values: dict[str, list[float]] = {}
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    # -- data ---------------------------------------------------------------------------
    def clear(self) -> None:
        self._steps.clear()
        self._values.clear()
        self.update()

    def set_history(self, history: Mapping[str, Sequence[float]]) -> None:
        """Whole curves (e.g. of a resumed run): task -> loss per step from step 1."""
        self.clear()
        for k, vals in history.items():
            self._steps[k] = list(range(1, len(vals) + 1))
            self._values[k] = [float(v) for v in vals]
        self.update()

    def extend(self, batch: Mapping[str, Sequence[tuple[int, float]]]) -> None:
        for k, pairs in batch.items():
            self._steps.setdefault(k, []).extend(int(s) for s, _ in pairs)
            self._values.setdefault(k, []).extend(float(v) for _, v in pairs)
        self.update()

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Task -> (steps, smoothed loss), decimated to at most MAX_POINTS points."""
        out = {}
        for k, steps in self._steps.items():
            s = np.asarray(steps)
            v = running_mean(np.asarray(self._values[k]), self.window)
            if len(s) > MAX_POINTS:
                pick = np.linspace(0, len(s) - 1, MAX_POINTS).astype(int)
                s, v = s[pick], v[pick]
            out[k] = (s, v)
        return out

    @staticmethod
    def colour_of(curve: str) -> tuple[int, int, int] | None:
        """The colour of a curve: the total's grey, or the colour of the regime of the task."""
        return TOTAL_COLOUR if curve == "total" else registry.task_colour(curve)

    # -- drawing ------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(120, 120, 120)))
        curves = {k: c for k, c in self.curves().items() if np.isfinite(c[1]).any()}
        if not curves:
            rect = QRectF(self.rect()).adjusted(34, 8, -8, -18)
            p.drawRect(rect)
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, "loss per task appears here")
            return
        smax = max(int(c[0].max()) for c in curves.values())
        vals = np.concatenate([c[1][np.isfinite(c[1]) & (c[1] > 0)] for c in curves.values()] or [[1.0]])
        lo = math.log10(max(vals.min(), 1e-4)) if vals.size else -1
        hi = math.log10(max(vals.max(), 1e-4)) if vals.size else 0
        if hi - lo < 0.3:
            lo, hi = lo - 0.15, hi + 0.15
        ticks = f"{10 ** hi:.2g}", f"{10 ** lo:.2g}"
        axis = axis_label_width(p.fontMetrics(), ticks)      # the y labels fit left of the frame
        rect = QRectF(self.rect()).adjusted(axis + 4, 8, -8, -18)
        p.drawRect(rect)
        p.drawText(QRectF(0, rect.top() - 6, axis, 14), Qt.AlignmentFlag.AlignRight, ticks[0])
        p.drawText(QRectF(0, rect.bottom() - 8, axis, 14), Qt.AlignmentFlag.AlignRight, ticks[1])
        p.drawText(QRectF(rect.left(), rect.bottom() + 2, rect.width(), 14),
                   Qt.AlignmentFlag.AlignRight, f"step {smax}")
        fallback = iter(_FALLBACK * 4)
        legend_y = rect.top() + 4
        for k, (s, v) in curves.items():
            colour = QColor(*(self.colour_of(k) or next(fallback)))
            p.setPen(QPen(colour, 1.5))
            path, drawing = QPainterPath(), False
            for step, val in zip(s, v):
                if not (np.isfinite(val) and val > 0):
                    drawing = False
                    continue
                x = rect.left() + rect.width() * (step / max(smax, 1))
                y = rect.bottom() - rect.height() * ((math.log10(val) - lo) / (hi - lo))
                if drawing:
                    path.lineTo(QPointF(x, y))
                else:
                    path.moveTo(QPointF(x, y))
                    drawing = True
            p.drawPath(path)
            p.drawText(QPointF(rect.right() - 90, legend_y + 10), k)
            legend_y += 13
        p.end()
