#!/usr/bin/env python3
"""The vendored schema accepts a correct descriptor and rejects the mistakes Slicer rejects."""
import os
import subprocess
import sys
import tempfile

schema = sys.argv[1]
GOOD = """<?xml version="1.0"?><executable><category>c</category><title>t</title><description>d</description>
<parameters><label>l</label><description>d</description>
<image fileExtensions=".nii.gz,.nrrd" type="scalar"><name>x</name><index>0</index><description>d</description>
<label>l</label><channel>input</channel></image>
<double><name>y</name><longflag>y_value</longflag><description>d</description><label>l</label><default>1</default>
<constraints><minimum>0</minimum><maximum>2</maximum><step>0.1</step></constraints></double>
</parameters></executable>"""
BAD = {
    "label before description": GOOD.replace("<description>d</description>\n<label>l</label><channel>",
                                             "<label>l</label><description>d</description><channel>"),
    "dash in long flag": GOOD.replace("y_value", "y-value"),
    "no title": GOOD.replace("<title>t</title>", ""),
    "bad image type": GOOD.replace('type="scalar"', 'type="colour"'),
    "dash in name": GOOD.replace("<name>y</name>", "<name>y-z</name>"),
}


def valid(text):
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
        f.write(text)
    r = subprocess.run(["xmllint", "--noout", "--schema", schema, f.name], capture_output=True)
    os.unlink(f.name)
    return r.returncode == 0


if not valid(GOOD):
    print("FAIL: good descriptor rejected")
    sys.exit(1)
for what, text in BAD.items():
    if text == GOOD:
        print("FAIL: test mutation did not apply: " + what)
        sys.exit(1)
    if valid(text):
        print("FAIL: accepted a descriptor with " + what)
        sys.exit(1)
print("ok: schema accepts the good descriptor and rejects %d bad ones" % len(BAD))
