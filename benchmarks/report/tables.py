"""The lazy suite's tables and the targets' verdicts, from its records (ours and the peers' alike)."""

from __future__ import annotations

import numpy as np

from benchmarks.harness.methods import METHODS, PEER_METHODS, RATIO_METHODS, SHORT_NAMES, TARGET_RATIO

METRICS = ("dice", "object_dice", "ap50", "ap_sweep", "mdice", "object_hausdorff")
METRIC_NAMES = {"dice": "Dice", "object_dice": "object Dice", "ap50": "AP50", "ap_sweep": "AP 0.5-0.9",
                "mdice": "mDice", "object_hausdorff": "Hausdorff (px)"}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None], float)
    if not len(a):
        return float("nan"), 0.0
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def mean_sd_text(values) -> str:
    """The mean, and "± the standard deviation" when there are two values or more (3 decimals)."""
    mean, sd = _mean_sd(list(values))
    return f"{mean:.3f}" if len(values) < 2 else f"{mean:.3f} ± {sd:.3f}"


def rows_of(records: list[dict], family: str, variant: str = "default", budget: str | None = None) -> list[dict]:
    """Records of a family (one variant and budget) averaged over seeds, per (method, ratio)."""
    sel = [r for r in records if r["family"] == family and r.get("variant", "default") == variant and
           (budget is None or r.get("budget") == budget)]
    keys = sorted({(r["method"], r["ratio"]) for r in sel}, key=lambda k: (METHODS.index(k[0]), k[1]))
    rows = []
    for method, ratio in keys:
        rs = [r for r in sel if r["method"] == method and r["ratio"] == ratio]
        row = {"method": method, "ratio": ratio, "n": len(rs), "n_strong": rs[0]["n_strong"],
               "n_train": rs[0]["n_train"], "seeds": sorted(r.get("seed", 0) for r in rs),
               "train_s": float(np.mean([r["train_s"] for r in rs])),
               "steps": float(np.mean([r.get("steps", 0) for r in rs]))}
        if any("epochs" in r for r in rs):
            row["epochs"] = float(np.mean([r.get("epochs", 0) for r in rs]))
        for k in METRICS:
            row[k], row[k + "_sd"] = _mean_sd([r.get(k) for r in rs])
        for k in ("painted_pixels", "strokes", "objects_traced"):
            row[k] = float(np.mean([(r.get("cost") or {}).get(k, 0) for r in rs]))
        for v in ("flips", "tuned", "watershed_seeds"):
            vs = [r.get("variants", {}).get(v) or r.get(v) for r in rs]
            vs = [x for x in vs if x]
            if vs:
                row[v] = {k: _mean_sd([x.get(k) for x in vs]) for k in METRICS}
        rows.append(row)
    return rows


def _fmt(row: dict, k: str, digits: int = 3) -> str:
    v = row.get(k)
    if v is None or not np.isfinite(v):
        return "–"
    sd = row.get(k + "_sd", 0.0)
    return f"{v:.{digits}f}" + (f" ± {sd:.{digits}f}" if row["n"] > 1 else "")


def _strong_text(r: dict) -> str:
    strong = f"{r['n_strong']}/{r['n_train']}"
    if r["method"] in RATIO_METHODS:
        actual = r["n_strong"] / max(r["n_train"], 1)
        strong += (f" ({100 * r['ratio']:g} %)" if abs(actual - r["ratio"]) <= 0.02 else
                   f" ({100 * actual:.0f} %; {100 * r['ratio']:g} % asked)")
    return strong


def _beyond(a: dict, b: dict, k: str, margin: float = 0.0) -> tuple[float, float, bool]:
    """Difference a - b of metric k, the combined seed spread, and whether the difference exceeds
    ``margin`` and the spread (sqrt(sd_a^2 + sd_b^2); 0 with one seed each)."""
    d = a[k] - b[k]
    spread = float(np.hypot(a.get(k + "_sd", 0.0), b.get(k + "_sd", 0.0)))
    return d, spread, bool(d >= margin and d > spread)


def targets(records: list[dict], families: list[str], budget: str | None = None) -> list[str]:
    """The issue's targets on the records (means ± sd over seeds), one line each; a target whose runs
    are not in the records yet says so."""
    lines, improved = [], []
    todo = "**not measured yet**"
    for fam in families:
        rows = {(r["method"], r["ratio"]): r for r in rows_of(records, fam, budget=budget)}
        full = rows.get(("full", 1.0))
        mts = [r for (m, ratio), r in rows.items() if m == "mt" and ratio <= TARGET_RATIO + 1e-9]
        if not mts:
            lines.append(f"- {fam}: {todo} (no multi-task run at <= {100 * TARGET_RATIO:g} % strong images)")
            continue
        mt = max(mts, key=lambda r: r["ratio"])   # the largest ratio <= 10 %
        pct = f"{100 * mt['ratio']:g} %"
        actual = mt["n_strong"] / max(mt["n_train"], 1)
        if abs(actual - mt["ratio"]) > 0.02:
            pct += f" (asked; {mt['n_strong']}/{mt['n_train']} = {100 * actual:.0f} % given, the fewest possible)"
        if full is None:
            lines.append(f"- {fam}: multi-task at {pct} against full supervision: {todo} (no full-supervision run)")
        else:
            seeds = f"{mt['n']} seed(s) vs {full['n']}"
            for k in ("dice", "ap50"):
                rel = mt[k] / max(full[k], 1e-9)
                lines.append(f"- {fam}: multi-task at {pct} reaches {rel:.3f}x the {METRIC_NAMES[k]} of full "
                             f"supervision ({_fmt(mt, k)} vs {_fmt(full, k)}; {seeds}): "
                             f"**{'met' if rel >= 0.95 else 'missed'}** (target >= 0.95x)")
        for base in ("sl", "pl", "wl"):
            b = rows.get((base, mt["ratio"])) or rows.get((base, 0.0))
            if b is None:
                lines.append(f"  - beats {SHORT_NAMES[base]}: {todo}")
                continue
            parts, ok = [], True
            for k in ("ap50", "object_dice"):
                d, spread, good = _beyond(mt, b, k, 0.03)
                ok &= good
                parts.append(f"{METRIC_NAMES[k]} {d:+.3f} (spread {spread:.3f})")
            one = " (one seed each: no spread yet)" if mt["n"] == 1 and b["n"] == 1 else ""
            lines.append(f"  - beats {SHORT_NAMES[base]} by " + ", ".join(parts) +
                         f": **{'met' if ok else 'missed'}** (target +0.03 beyond the spread){one}")
        mtr = rows.get(("mtr", mt["ratio"]))
        if mtr is None:
            lines.append(f"  - recursive approximation vs multi-task at {pct}: {todo}")
        else:
            parts, better = [], False
            for k in ("ap50", "object_dice"):
                d, spread, good = _beyond(mtr, mt, k)
                better |= good
                parts.append(f"{METRIC_NAMES[k]} {d:+.3f} (spread {spread:.3f})")
            improved.append(better)
            lines.append(f"  - recursive approximation vs multi-task at {pct}: " + ", ".join(parts) +
                         f" ({'improves beyond the spread' if better else 'no improvement beyond the spread'})")
    n = sum(improved)
    verdict = "met" if n >= 2 else "missed" if len(families) - len(improved) + n < 2 else "not measured yet"
    lines.append(f"- recursive approximation improves AP50 or object Dice beyond the seed spread on {n} of "
                 f"{len(improved)} sets measured ({len(families)} in all): **{verdict}** (target: at least two)")
    return lines


def peer_targets(records: list[dict], families: list[str], budget: str | None = None) -> list[str]:
    """Issue 20's targets against the peer, one line each: multi-task at <= 10 % above Cellpose on every
    exact mask in AP50 and AP 0.5-0.9 beyond the spread, and above Cellpose on the same strong tiles by
    >= 0.10 AP50. Nothing when no peer ran."""
    if not any(r.get("method") in PEER_METHODS for r in records):
        return []
    lines = []
    for fam in families:
        rows = {(r["method"], r["ratio"]): r for r in rows_of(records, fam, budget=budget)}
        mts = [r for (m, ratio), r in rows.items() if m == "mt" and ratio <= TARGET_RATIO + 1e-9]
        if not mts:
            continue
        mt = max(mts, key=lambda r: r["ratio"])
        cp, cp10 = rows.get(("cp", 1.0)), rows.get(("cp10", mt["ratio"]))
        if cp is not None:
            parts, ok = [], True
            for k in ("ap50", "ap_sweep"):
                d, spread, good = _beyond(mt, cp, k)
                ok &= good
                parts.append(f"{METRIC_NAMES[k]} {d:+.3f} (spread {spread:.3f})")
            lines.append(f"- {fam}: multi-task at {100 * mt['ratio']:g} % vs Cellpose on every exact mask: "
                         + ", ".join(parts) + f": **{'met' if ok else 'missed'}** (target: higher beyond the spread)")
        if cp10 is not None:
            d, spread, good = _beyond(mt, cp10, "ap50", 0.10)
            lines.append(f"- {fam}: multi-task vs Cellpose on the same {100 * mt['ratio']:g} % strong tiles: AP50 "
                         f"{d:+.3f} (spread {spread:.3f}): **{'met' if good else 'missed'}** (target +0.10)")
    return lines


def peer_budget_lines(rows: list[dict]) -> list[str]:
    """What each peer row trained for (steps, epochs, seconds) beside our full supervision's steps."""
    ours = next((r for r in rows if r["method"] == "full"), None)
    out = []
    for r in rows:
        if r["method"] in PEER_METHODS:
            out.append(f"- {SHORT_NAMES[r['method']]} ({_strong_text(r)}): {r['steps']:.0f} steps "
                       f"({r.get('epochs', 0):.0f} epochs) in {r['train_s']:.0f} s of training"
                       + (f"; full supervision: {ours['steps']:.0f} steps in {ours['train_s']:.0f} s" if ours else ""))
    return ["", "Training of the peer rows (mean over seeds):", "", *out] if out else []


def table(rows: list[dict]) -> list[str]:
    out = ["| method | strong images | n | " + " | ".join(METRIC_NAMES[k] for k in METRICS) +
           " | painted px | strokes | objects traced |",
           "|---|---|---|" + "---|" * len(METRICS) + "---|---|---|"]
    for r in rows:
        out.append(f"| {SHORT_NAMES[r['method']]} | {_strong_text(r)} | {r['n']} | " +
                   " | ".join(_fmt(r, k, 1 if k == "object_hausdorff" else 3) for k in METRICS) +
                   f" | {r['painted_pixels']:.0f} | {r['strokes']:.0f} | {r['objects_traced']:.0f} |")
    return out


def variant_lines(rows: list[dict], name: str, title: str) -> list[str]:
    """One line per row with the metrics of the evaluation variant ``name``, next to the plain ones."""
    found = [r for r in rows if name in r]
    if not found:
        return []
    out = ["", title, "", "| method | strong images | n | Dice | object Dice | AP50 | AP 0.5-0.9 | mDice |",
           "|---|---|---|---|---|---|---|---|"]
    for r in found:
        v = r[name]
        cells = []
        for k in ("dice", "object_dice", "ap50", "ap_sweep", "mdice"):
            m, sd = v[k]
            cells.append(f"{m:.3f} ({m - r[k]:+.3f})" if np.isfinite(m) else "–")
        out.append(f"| {SHORT_NAMES[r['method']]} | {_strong_text(r)} | {r['n']} | " + " | ".join(cells) + " |")
    return out


def method_changes(records: list[dict]) -> list[str]:
    """The variants (method changes) against the defaults at the same budget, per set and method."""
    others = [r for r in records if r.get("variant", "default") != "default"]
    if not others:
        return []
    out = ["### Method changes (variants against the defaults, same budget, same seeds)", "",
           "| set | method | budget | variant | n | Dice | object Dice | AP50 | mDice | default: Dice | "
           "object Dice | AP50 | mDice |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["family"], r["method"], r["ratio"], r["budget"], r["variant"]) for r in others})
    for fam, method, ratio, budget, variant in keys:
        mine = [r for r in others if (r["family"], r["method"], r["ratio"], r["budget"], r["variant"]) ==
                (fam, method, ratio, budget, variant)]
        seeds = {r["seed"] for r in mine}
        base = [r for r in records if r.get("variant", "default") == "default" and r["family"] == fam and
                r["method"] == method and r["ratio"] == ratio and r["budget"] == budget and r["seed"] in seeds]
        cells = []
        for group in (mine, base):
            for k in ("dice", "object_dice", "ap50", "mdice"):
                m, sd = _mean_sd([r.get(k) for r in group])
                cells.append("–" if not group or not np.isfinite(m) else f"{m:.3f}" + (f" ± {sd:.3f}" if len(group) > 1
                                                                                      else ""))
        out.append(f"| {fam} | {SHORT_NAMES[method]} {100 * ratio:g} % | {budget} | {variant} | {len(mine)} | "
                   + " | ".join(cells) + " |")
    return out + [""]

