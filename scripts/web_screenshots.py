"""Refresh the web page's screenshots in docs/images: the upload page, an answer with its
attention pictures, the moderator's corrections page and the model versions page.

    python scripts/web_screenshots.py            # the shipped model, a CC BY photo from ../shared
    python scripts/web_screenshots.py --photo my.jpg

Starts a real `captionbot web` on a free port with a throw-away data folder, drives Debian's
chromium with Playwright, and stops it again. Needs `pip install -e '.[all,dev]'` and chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.web.browser import chromium_path, launch_chromium, running_site  # noqa: E402

COCO = ROOT.parent / "shared" / "datasets" / "coco-mini"
PASSWORD = "screenshots only"


def default_photo() -> tuple[Path, str]:
    """A coco-mini photo whose Flickr licence allows adapted copies (CC BY), with its attribution."""
    rows = [json.loads(line) for line in (COCO / "captions.jsonl").read_text().splitlines() if line.strip()]
    usable = [r for r in rows if r.get("license", "").endswith("/licenses/by/2.0/")]
    usable.sort(key=lambda r: ("dog" not in r.get("categories", []), r["coco_id"]))
    if not usable:
        raise SystemExit("no CC BY photo in coco-mini; pass --photo")
    r = usable[0]
    return COCO / "Images" / r["image"], f"COCO {r['coco_id']}, {r['flickr_url']}, {r['license']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, help="photo to caption (default: a CC BY photo from coco-mini)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    if args.photo:
        photo, credit = args.photo, str(args.photo)
    else:
        photo, credit = default_photo()
    chromium = chromium_path()
    if chromium is None:
        raise SystemExit("chromium is not installed: apt-get install chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="captionbot-shots-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAPTIONBOT_") and "TOKEN" not in k}
        env.update(
            CAPTIONBOT_DATA_DIR=tmp,
            CAPTIONBOT_METRICS_PORT="0",
            CAPTIONBOT_WEB_MODERATOR_PASSWORD=PASSWORD,
        )
        with running_site(Path(tmp), env) as site, sync_playwright() as p:
            browser = launch_chromium(p, chromium)
            page = browser.new_page(base_url=site.url, viewport={"width": 1000, "height": 900})
            page.set_default_timeout(120_000)
            page.goto("/")
            page.screenshot(path=args.out / "web-upload.png", full_page=True)
            page.set_input_files("input[type=file]", str(photo))
            page.get_by_role("button", name=re.compile("describe", re.I)).click()
            page.wait_for_url(re.compile(r"/r/"))
            page.locator(".caption").wait_for()
            page.get_by_role("button", name=re.compile("^good", re.I)).click()  # a rating for the models page
            page.wait_for_load_state("networkidle")
            page.locator("details").first.evaluate("d => d.open = true")
            page.locator("details img").evaluate_all("imgs => imgs.forEach(i => { i.loading = 'eager'; })")
            page.wait_for_function(
                "() => [...document.querySelectorAll('details img')].every(i => i.complete && i.naturalWidth > 0)"
            )
            page.get_by_label(re.compile("better caption", re.I)).fill("a dog runs through the grass")
            page.screenshot(path=args.out / "web-answer.png", full_page=True)
            page.get_by_role("button", name=re.compile("save|send|suggest", re.I)).click()
            page.goto("/moderate/login")
            page.get_by_label(re.compile("password", re.I)).fill(PASSWORD)
            page.get_by_role("button", name=re.compile("sign in", re.I)).click()
            page.wait_for_url(re.compile(r"/moderate$"))
            page.screenshot(path=args.out / "web-moderate.png", full_page=True)
            page.goto("/moderate/models")
            page.screenshot(path=args.out / "web-models.png", full_page=True)
            browser.close()
    print(f"wrote 4 screenshots to {args.out} (photo: {credit})")


if __name__ == "__main__":
    main()
