"""Size, build time and load time of the data browser (``reports/K.html``) at 3,111 and 52k samples.

The rows: the 3,111 real Cherry-Alpaca rows as ``original``; the reference's ChatGPT-merged
instructions of the same samples (``cherry_alpaca_5_percent_compressed.json``, joined on
``output``) as the reflected instruction of ``instruction`` and ``both``; as the reflected
response of ``response`` and ``both``, the output of the next row, a complete rewrite (the
worst case for the word diffs, which then hold both texts). Scores are seeded random numbers;
20% of the reflections fail (no text). 52k samples repeat the 3,111 with new ids.

Load time: headless Chromium (Debian's ``chromium``) opens the file, until the table and every
plot are drawn (``window.rtReady``); then one branch filter and one side-by-side view are timed.
The reference point is the data the page replaces: the JSONL files a researcher would read by
hand (four variant files, scores, selection).

    python benchmarks/browse_page.py --samples 3111 52002
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALPACA = REPO.parent / "shared" / "data" / "alpaca"


def make_run(n: int, d: Path) -> None:
    from reflection_tuning.infra.io import write_jsonl
    from reflection_tuning.rows import VARIANTS, canonical

    rows = json.loads((ALPACA / "cherry_alpaca_5_percent.json").read_text())
    compressed = json.loads((ALPACA / "cherry_alpaca_5_percent_compressed.json").read_text())
    merged = {r["output"]: r["instruction"] for r in compressed}
    rng = random.Random(0)
    out = {v: [] for v in VARIANTS}
    scores, selected = [], []
    for k in range(n):
        r, nxt = rows[k % len(rows)], rows[(k + 1) % len(rows)]
        o = canonical(r["instruction"], r.get("input", ""), r["output"], "cherry_alpaca")
        o["id"] = f"{o['id']}{k // len(rows):04d}"
        out["original"].append(o)
        texts = {"instruction": (merged.get(r["output"], r["instruction"]), r["output"]),
                 "response": (r["instruction"], nxt["output"]),
                 "both": (merged.get(r["output"], r["instruction"]), nxt["output"])}
        for v, (q, a) in texts.items():
            ok = rng.random() > 0.2
            out[v].append({"id": o["id"], "variant": v, "instruction": q if ok else None,
                           "input": "" if ok else None, "output": a if ok else None, "source": "cherry_alpaca",
                           "status": "ok" if ok else "parse_error",
                           "teacher_model": "bench", "template_hash": "000000000000",
                           "error": None if ok else "no [New Answer] section"})
        for v in VARIANTS:
            scores.append({"id": o["id"], "variant": v, "status": "ok", "ifd": rng.uniform(0.2, 1.1),
                           "rifd": rng.uniform(0.1, 1.0)})
        if rng.random() < 0.5:
            selected.append({"id": o["id"], "variant": rng.choice(VARIANTS)})
    for v in VARIANTS:
        write_jsonl(d / f"{v}.jsonl", out[v])
    write_jsonl(d / "scores.jsonl", scores, sort_by=("id", "variant"))
    write_jsonl(d / "selected.jsonl", selected)


def load_in_browser(html: Path, chromium: str) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        start = time.perf_counter()
        page.goto(html.as_uri(), timeout=300_000)
        page.wait_for_function("window.rtReady === true || window.rtError !== undefined", timeout=300_000)
        ready = time.perf_counter() - start
        timing = page.evaluate("window.rtTiming")
        start = time.perf_counter()
        page.select_option("#filter-branch", index=1)
        page.locator("#samples tbody tr").first.wait_for()
        filtered = time.perf_counter() - start
        start = time.perf_counter()
        page.locator("#samples tbody tr").first.click()
        page.wait_for_selector("#detail:not([hidden])")
        detail = time.perf_counter() - start
        browser.close()
    return {"load_s": ready, **{k: v / 1000 for k, v in timing.items()}, "filter_s": filtered, "detail_s": detail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, nargs="+", default=[3111])
    parser.add_argument("--chromium", default=shutil.which("chromium"))
    args = parser.parse_args()
    from reflection_tuning.browse.page import build

    for n in args.samples:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "data"
            make_run(n, d)
            jsonl = sum(p.stat().st_size for p in d.glob("*.jsonl"))
            start = time.perf_counter()
            figures = build("bench", d, Path(tmp) / "metrics", Path(tmp) / "bench.html", method="v2")
            built = time.perf_counter() - start
            line = (f"{n} samples: page {figures['bytes'] / 1e6:.1f} MB (JSONL it replaces {jsonl / 1e6:.1f} MB, "
                    f"ratio {figures['bytes'] / jsonl:.2f}); built in {built:.1f} s")
            if args.chromium:
                t = load_in_browser(Path(tmp) / "bench.html", args.chromium)
                line += (f"; Chromium: ready in {t['load_s']:.2f} s (inflate {t['inflate_ms']:.2f} s, table "
                         f"{t['table_ms']:.2f} s, plots {t['plots_ms']:.2f} s), branch filter {t['filter_s']:.2f} s, "
                         f"side-by-side {t['detail_s']:.2f} s")
            print(line, flush=True)


if __name__ == "__main__":
    main()
