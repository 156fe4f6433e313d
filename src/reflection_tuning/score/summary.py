"""What the score stage reports: flat metrics and DVC plot data from the score rows. Pure, no torch.

Metrics (keys ``<variant>_<name>``, all present for every variant, ``null`` when there is
no ok row): rows and a count per row status (``status_<s>``, ok only when both ratios
are), ``failed``, a count per status of each ratio (``ifd_status_<s>``,
``rifd_status_<s>``), the mean, median and quantiles ``p10 p25 p50 p75 p90`` of IFD over
the rows whose IFD is ok and of r-IFD over the rows whose r-IFD is ok (the two are
independent), the share of IFD-ok rows with IFD < 1, and the share of scored rows
truncated. Quantiles interpolate linearly between order statistics
(numpy's default).

Plots:
    ``score_ifd.csv``       ``id, variant, ifd, rifd`` per ok row (scatter IFD against r-IFD).
    ``score_hist.csv``      ``measure, variant, bin, count``: IFD and r-IFD histograms per variant
                            (each over the rows where that ratio is ok),
                            fixed bins of :data:`BIN_WIDTH` from 0; the last bin (``bin = HIST_MAX``)
                            holds everything at or above :data:`HIST_MAX`.
    ``score_reflected.csv`` ``id, variant, ifd_original, ifd_reflected, rifd_original, rifd_reflected``
                            for each reflected variant whose row and original are both ok.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reflection_tuning import status as st
from reflection_tuning.infra.io import write_csv
from reflection_tuning.score.ifd import ratio_status

QUANTILES = (10, 25, 50, 75, 90)
MEASURES = ("ifd", "rifd")
BIN_WIDTH = 0.05
HIST_MAX = 2.0


def quantile(xs: Sequence[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of ``xs`` by linear interpolation; None for no values."""
    if not xs:
        return None
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def score_metrics(rows: Sequence[dict[str, Any]], variants: Sequence[str]) -> dict[str, Any]:
    """Flat metrics per variant (see the module doc); ``rows`` are score rows with ``variant``."""
    m: dict[str, Any] = {"rows": len(rows)}
    for v in variants:
        rs = [r for r in rows if r.get("variant", "original") == v]
        ok = [r for r in rs if r["status"] == st.OK]
        scored = [r for r in rs if r["status"] != st.UNUSABLE]
        m[f"{v}_rows"] = len(rs)
        for s in st.SCORE:
            m[f"{v}_status_{s}"] = sum(r["status"] == s for r in rs)
        m[f"{v}_failed"] = len(scored) - len(ok)  # scored but not both ratios usable (empty, nan)
        for key in MEASURES:
            for s in st.SCORE:
                m[f"{v}_{key}_status_{s}"] = sum(ratio_status(r, key) == s for r in rs)
        for key in MEASURES:
            values = [r[key] for r in rs if ratio_status(r, key) == st.OK]
            m[f"{v}_{key}_mean"] = statistics.fmean(values) if values else None
            m[f"{v}_{key}_median"] = statistics.median(values) if values else None
            for q in QUANTILES:
                m[f"{v}_{key}_p{q}"] = quantile(values, q / 100)
        ifd_ok = [r["ifd"] for r in rs if ratio_status(r, "ifd") == st.OK]
        m[f"{v}_ifd_lt1_share"] = sum(x < 1 for x in ifd_ok) / len(ifd_ok) if ifd_ok else None
        m[f"{v}_truncated_share"] = sum(bool(r["truncated"]) for r in scored) / len(scored) if scored else None
    return m


def histogram(values: Sequence[float]) -> list[int]:
    """Counts in the fixed bins ``[k * BIN_WIDTH, (k + 1) * BIN_WIDTH)``, the last one open-ended."""
    n = round(HIST_MAX / BIN_WIDTH)
    counts = [0] * (n + 1)
    for x in values:
        counts[min(int(x / BIN_WIDTH), n)] += 1
    return counts


def write_plots(plot: Path, hist_path: Path, reflected: Path, rows: Sequence[dict[str, Any]],
                variants: Sequence[str]) -> None:
    """Write the three plot files of the module doc: ``score_ifd``, ``score_hist``, ``score_reflected``."""
    ok = sorted((r for r in rows if r["status"] == st.OK), key=lambda r: (str(r["id"]), r["variant"]))
    write_csv(plot, ["id", "variant", "ifd", "rifd"],
              ([r["id"], r["variant"], repr(r["ifd"]), repr(r["rifd"])] for r in ok))
    hist = []
    for key in MEASURES:
        for v in variants:
            counts = histogram([r[key] for r in rows if r["variant"] == v and ratio_status(r, key) == st.OK])
            hist += [[key, v, repr(round(k * BIN_WIDTH, 6)), c] for k, c in enumerate(counts)]
    write_csv(hist_path, ["measure", "variant", "bin", "count"], hist)
    original = {r["id"]: r for r in ok if r["variant"] == "original"}
    pairs = [[r["id"], r["variant"], repr(original[r["id"]]["ifd"]), repr(r["ifd"]),
              repr(original[r["id"]]["rifd"]), repr(r["rifd"])]
             for r in ok if r["variant"] != "original" and r["id"] in original]
    write_csv(reflected,
              ["id", "variant", "ifd_original", "ifd_reflected", "rifd_original", "rifd_reflected"], pairs)
