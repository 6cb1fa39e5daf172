#!/usr/bin/env python3
"""Checks GraftWatch HTML reports the way a reader opens them: in headless Chromium.

For each page: every local resource it references (img/script/iframe/source/embed src, srcset, link href,
object data, CSS url(...), and local <a href> links) exists; no external resource is loaded (reports must work
offline); referenced PNG pictures decode and are not blank, SVG plots are well-formed XML; the page loads in
headless Chromium and the browser reports every <img> rendered (complete, natural width > 0; asked through a
probe page that frames the report); a screenshot is taken and is not blank (pixel variance > 0 and
more than 0.5% of the pixels differ from the background colour).

usage: check_report.py PAGE.html [PAGE.html ...] [--screenshots DIR] [--chromium PATH]
Exit 0 when every page passes, 1 otherwise (the reasons are printed), 77 when Chromium is missing.
Only the Python standard library is used (zlib/struct PNG decoding).
"""
import argparse
import html.parser
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.parse
import xml.dom.minidom
import zlib

MIN_NONBACKGROUND = 0.005  # fraction of screenshot pixels that must differ from the background colour


class CheckError(Exception):
    pass


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        p = shutil.which(name)
        if p:
            return p
    return None


class _Refs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.resources = []  # loaded by the page
        self.links = []  # navigations (<a href>)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("img", "script", "iframe", "source", "embed", "audio", "video", "track", "input") and a.get("src"):
            self.resources.append(a["src"])
        if a.get("srcset"):
            for part in a["srcset"].split(","):
                if part.strip():
                    self.resources.append(part.strip().split()[0])
        if tag == "link" and a.get("href"):
            self.resources.append(a["href"])
        if tag == "object" and a.get("data"):
            self.resources.append(a["data"])
        if tag in ("image", "use") and (a.get("href") or a.get("xlink:href")):
            self.resources.append(a.get("href") or a.get("xlink:href"))
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if a.get("style"):
            self.resources += re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", a["style"])

    def handle_data(self, data):
        # CSS in <style> blocks
        self.resources += re.findall(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)", data)


def _local_path(page, ref):
    """Path of a reference relative to the page; None for fragments and data: URIs; 'external' for remote URLs."""
    ref = ref.strip()
    if not ref or ref.startswith("#") or ref.startswith("data:") or ref.startswith("javascript:"):
        return None
    u = urllib.parse.urlparse(ref)
    if u.scheme in ("http", "https", "ftp") or ref.startswith("//"):
        return "external"
    if u.scheme == "mailto":
        return None
    if u.scheme == "file":
        return urllib.parse.unquote(u.path)
    return os.path.normpath(os.path.join(os.path.dirname(page), urllib.parse.unquote(u.path)))


def decode_png(path):
    """Returns (width, height, channels, rows of bytes) of an 8-bit PNG (grey, grey+alpha, RGB, RGBA, palette)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise CheckError("%s is not a PNG" % path)
    pos, idat, palette = 8, b"", None
    width = height = depth = ctype = interlace = None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if width is None or depth != 8 or interlace != 0:
        raise CheckError("%s: only 8-bit non-interlaced PNGs are checked (depth %s, interlace %s)" %
                         (path, depth, interlace))
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ft = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ft == 1:
                line[i] = (line[i] + a) & 255
            elif ft == 2:
                line[i] = (line[i] + b) & 255
            elif ft == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif ft == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if (pa <= pb and pa <= pc) else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    if ctype == 3:
        if palette is None:
            raise CheckError("%s: palette PNG without PLTE" % path)
        rows = [b"".join(palette[3 * v:3 * v + 3] for v in r) for r in rows]
        channels = 3
    return width, height, channels, rows


def image_stats(path):
    """Pixel variance over all colour channels, and the fraction of pixels differing from the most common colour
    (the background) by more than 8 grey levels in some channel."""
    width, height, channels, rows = decode_png(path)
    colour = min(channels, 3)  # ignore alpha
    n = s = s2 = 0
    counts = {}
    step = max(1, (width * height) // 200000)  # large screenshots: every step-th pixel
    pixels = []
    for r in rows:
        for x in range(0, width, step):
            px = r[x * channels:x * channels + colour]
            pixels.append(px)
            counts[px] = counts.get(px, 0) + 1
            for v in px:
                n += 1
                s += v
                s2 += v * v
    mean = s / n
    variance = s2 / n - mean * mean
    background = max(counts, key=counts.get)
    differ = sum(1 for px in pixels if max(abs(a - b) for a, b in zip(px, background)) > 8)
    return {"width": width, "height": height, "variance": variance, "nonbackground": differ / len(pixels)}


def check_resources(page):
    parser = _Refs()
    with open(page, encoding="utf-8") as f:
        parser.feed(f.read())
    problems, images, resources = [], 0, 0
    for ref in parser.resources:
        p = _local_path(page, ref)
        if p is None:
            continue
        if p == "external":
            problems.append("external resource (reports must work offline): " + ref)
            continue
        resources += 1
        if not os.path.isfile(p):
            problems.append("missing resource: " + ref)
            continue
        if p.lower().endswith(".png"):
            st = image_stats(p)
            images += 1
            if st["variance"] <= 0:
                problems.append("blank picture (pixel variance 0): " + ref)
        elif p.lower().endswith(".svg"):
            try:
                xml.dom.minidom.parse(p)
                images += 1
            except Exception as e:  # noqa: BLE001
                problems.append("SVG is not well-formed XML: %s: %s" % (ref, e))
    for ref in parser.links:
        p = _local_path(page, ref)
        if p not in (None, "external") and not os.path.exists(p):
            problems.append("broken link: " + ref)
    return problems, resources, images


def screenshot(page, png, chromium, width=1280, height=1800):
    with tempfile.TemporaryDirectory(prefix="gwchromium") as profile:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-extensions", "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
               "--window-size=%d,%d" % (width, height), "--virtual-time-budget=5000",
               "--screenshot=" + os.path.abspath(png), "file://" + os.path.abspath(page)]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    errors = [line for line in r.stderr.splitlines()
              if "ERR_FILE_NOT_FOUND" in line or "Failed to load resource" in line or "net::ERR_" in line]
    if r.returncode != 0 or not os.path.isfile(png):
        raise CheckError("chromium failed (exit %d):\n%s" % (r.returncode, r.stderr[-2000:]))
    return errors


_PROBE = """<!DOCTYPE html><html><body><pre id="gwcheck">GWCHECK pending</pre>
<iframe id="f" width="1280" height="1800" src="%s"></iframe>
<script>
document.getElementById("f").onload = function () {
  var d = this.contentDocument, bad = [], n = 0;
  if (!d) { document.getElementById("gwcheck").textContent = "GWCHECK noaccess"; return; }
  var imgs = d.images;
  for (var i = 0; i < imgs.length; ++i) {
    ++n;
    if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad.push(imgs[i].getAttribute("src"));
  }
  document.getElementById("gwcheck").textContent =
    "GWCHECK images=" + n + " broken=" + bad.length + (bad.length ? " " + bad.join(" ") : "");
};
</script></body></html>
"""


def browser_images(page, chromium):
    """Loads the page in Chromium (in an iframe of a probe page) and asks the browser which <img> did not render
    (not complete or naturalWidth 0). Returns (images, [broken src])."""
    with tempfile.TemporaryDirectory(prefix="gwchromium") as tmp:
        probe = os.path.join(tmp, "probe.html")
        with open(probe, "w") as f:
            f.write(_PROBE % ("file://" + urllib.parse.quote(os.path.abspath(page))))
        profile = os.path.join(tmp, "profile")
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
               "--allow-file-access-from-files", "--user-data-dir=" + profile, "--virtual-time-budget=5000",
               "--dump-dom", "file://" + probe]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    m = re.search(r"GWCHECK images=(\d+) broken=(\d+)([^<]*)", r.stdout)
    if not m:
        raise CheckError("the browser probe gave no answer (exit %d): %s" % (r.returncode, r.stdout[-500:]))
    return int(m.group(1)), m.group(3).split()


def check_page(page, png, chromium):
    """Raises CheckError with every problem found; returns the numbers measured."""
    problems, resources, images = check_resources(page)
    console = screenshot(page, png, chromium)
    problems += ["chromium: " + e for e in console]
    shown, broken = browser_images(page, chromium)
    problems += ["picture not rendered by the browser: " + b for b in broken]
    st = image_stats(png)
    if st["variance"] <= 0:
        problems.append("blank screenshot (pixel variance 0)")
    if st["nonbackground"] < MIN_NONBACKGROUND:
        problems.append("screenshot nearly blank: %.2f%% of pixels differ from the background (minimum %.1f%%)" %
                        (100 * st["nonbackground"], 100 * MIN_NONBACKGROUND))
    if problems:
        raise CheckError("%s:\n  %s" % (page, "\n  ".join(problems)))
    st.update(resources=resources, images=images, rendered=shown)
    return st


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", nargs="+")
    ap.add_argument("--screenshots", default=".", help="folder for the screenshots (PAGE name + .png)")
    ap.add_argument("--chromium", default=None)
    args = ap.parse_args()
    chromium = args.chromium or find_chromium()
    if not chromium:
        print("check_report: chromium not found (Debian package chromium)")
        return 77
    os.makedirs(args.screenshots, exist_ok=True)
    failed = 0
    for page in args.pages:
        png = os.path.join(args.screenshots, os.path.basename(os.path.dirname(os.path.abspath(page))) + "_" +
                           os.path.splitext(os.path.basename(page))[0] + ".png")
        try:
            st = check_page(page, png, chromium)
            print("%s: OK (%d resources, %d pictures, %d rendered in the browser; screenshot %s variance %.1f, %.1f%% non-background)" %
                  (page, st["resources"], st["images"], st["rendered"], png, st["variance"], 100 * st["nonbackground"]))
        except CheckError as e:
            failed += 1
            print("FAIL " + str(e))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
