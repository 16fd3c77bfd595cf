"""Check a report in a real headless browser: nothing may be wider than the page.

    python tools/check_html.py REPORT.html [--screenshot OUT.png] [--width 1280]

Debian's ``chromium`` loads a copy of the page with a small script injected at the end of
its body; the script lists every element whose box reaches past the page's left or right
edge and is not inside a box that scrolls or clips horizontally (a wide table inside its own
``overflow-x:auto`` box is fine), and writes the list into the DOM, which ``--dump-dom``
prints. ``--screenshot`` also saves a full-page PNG (the window made as tall as the page).

Exit codes: 0 everything fits; 1 some element overflows (listed); 2 chromium is missing or
the page cannot be checked.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
MAX_HEIGHT = 60000  # px: taller screenshots are cut
MARKER = "check-html-result"

SCRIPT = """
<script>
(function () {
  function clipped(el) {
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      var o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden' || o === 'clip') return true;
    }
    return false;
  }
  var width = document.documentElement.clientWidth, bad = [];
  var all = document.body.getElementsByTagName('*');
  for (var i = 0; i < all.length; i++) {
    var el = all[i], r = el.getBoundingClientRect();
    if (el.id === '%(marker)s' || r.width === 0) continue;
    if ((r.right > width + 1 || r.left < -1) && !clipped(el)) {
      var parent = el.parentElement, pr = parent && parent.getBoundingClientRect();
      if (pr && parent !== document.body && (pr.right > width + 1 || pr.left < -1)
          && !clipped(parent)) continue;  // report the outermost overflowing element only
      bad.push({tag: el.tagName.toLowerCase(), id: el.id, cls: el.className || '',
                left: Math.round(r.left), right: Math.round(r.right),
                text: (el.textContent || '').trim().slice(0, 60)});
    }
  }
  var out = document.createElement('pre');
  out.id = '%(marker)s';
  out.textContent = JSON.stringify({width: width,
    scrollWidth: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight, overflowing: bad});
  document.body.appendChild(out);
})();
</script>
""".replace("%(marker)s", MARKER)


def find_browser() -> str | None:
    return next((path for b in BROWSERS if (path := shutil.which(b))), None)


def _chromium(browser: str, args: list[str], width: int, height: int) -> str:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",  # root in a container has no user namespace for the sandbox
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--window-size={width},{height}",
        "--virtual-time-budget=10000",
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def check(page: Path, screenshot: Path | None = None, width: int = 1280) -> dict:
    """The overflow report of ``page`` (see SCRIPT), and a screenshot if asked."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("chromium is not installed (Debian: apt-get install chromium)")
    text = page.read_text(encoding="utf-8")
    injected = text.replace("</body>", SCRIPT + "</body>", 1)
    if injected == text:
        injected = text + SCRIPT
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(injected, encoding="utf-8")
        dom = _chromium(browser, ["--dump-dom", copy.as_uri()], width, 900)
        found = re.search(rf'<pre id="{MARKER}">(.*?)</pre>', dom, re.S)
        if found is None:
            raise RuntimeError(f"{page}: the check script did not run (no result in the DOM)")
        result = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
        if screenshot is not None:
            height = min(int(result["height"]) + 20, MAX_HEIGHT)
            shot = Path(screenshot).resolve()
            _chromium(browser, [f"--screenshot={shot}", page.resolve().as_uri()], width, height)
            result["screenshot"] = str(shot)
            result["cut"] = result["height"] + 20 > MAX_HEIGHT
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path, help="save a full-page PNG here")
    parser.add_argument("--width", type=int, default=1280, help="window width in px")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"check_html: {args.page} is not a file; give an HTML report", file=sys.stderr)
        return 2
    try:
        result = check(args.page, args.screenshot, args.width)
    except FileNotFoundError as exc:
        print(f"check_html: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        print(f"check_html: {exc}", file=sys.stderr)
        return 2
    if result.get("screenshot"):
        cut = f" (cut at {MAX_HEIGHT} px)" if result.get("cut") else ""
        print(f"screenshot: {result['screenshot']}{cut}")
    bad = result["overflowing"]
    if not bad:
        print(
            f"ok: every element fits the {result['width']} px page "
            f"(page height {result['height']} px)"
        )
        return 0
    print(f"{len(bad)} element(s) wider than the {result['width']} px page:")
    for b in bad:
        name = b["tag"] + (f"#{b['id']}" if b["id"] else "") + (f".{b['cls']}" if b["cls"] else "")
        print(f"  <{name}> spans x = {b['left']}..{b['right']} px: {b['text']!r}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
