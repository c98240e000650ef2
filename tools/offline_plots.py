"""Build the offline page template for `dvc plots show`: Vega, Vega-Lite and vega-embed inlined, no CDN.

    python tools/offline_plots.py           # run by `make setup`, after `npm ci --prefix tools/vega`

DVC's default page loads the three libraries from cdn.jsdelivr.net, so it renders blank without internet access.
.dvc/config points `plots.html_template` at the page this writes (.dvc/plots/offline.html); the libraries come
from the npm registry at the exact versions in tools/vega/package-lock.json. The template has no `{scripts}`
placeholder, so DVC adds no <script src> of its own.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ROOT / "tools" / "vega" / "node_modules"
LIBRARIES = ("vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js")
OUT = ROOT / ".dvc" / "plots" / "offline.html"

PAGE = """<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  {refresh_tag}
  <title>cnn-pruning: DVC plots</title>
  %s
  <style>
    body { font-family: sans-serif; }
    table { border-spacing: 15px; }
  </style>
</head>
<body>
  {plot_divs}
</body>
</html>
"""


def main() -> None:
    scripts = []
    for lib in LIBRARIES:
        js = (MODULES / lib).read_text(encoding="utf-8")
        if "</script" in js:
            raise SystemExit(f"{lib} contains '</script' and cannot be inlined")
        scripts.append(f"<script>/* {lib} */\n{js}\n</script>")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(PAGE.replace("%s", "\n  ".join(scripts)), encoding="utf-8")
    tmp.replace(OUT)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KiB, {len(scripts)} libraries inlined)")


if __name__ == "__main__":
    main()
