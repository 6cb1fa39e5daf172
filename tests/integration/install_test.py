#!/usr/bin/env python3
"""Installation and packaging checks.

  install  `cmake --install BUILD --prefix TMP`: every app in bin/ and in lib/graftwatch/cli-modules/ (3D Slicer's
           "additional module paths"), each module answers --xml with a Slicer <executable> descriptor; the CMake
           package is installed; a downstream project (tests/integration/downstream) configures with
           find_package(GraftWatch), builds against the installed prefix and runs (gw::io round trip)
  deb      `cpack -G DEB`: the package holds the apps, the Slicer modules, the CMake package and the workflow, and
           declares its Debian dependencies
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
import xml.dom.minidom


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(cmd, **kw):
    t0 = time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    print("$ %s  -> exit %d in %.1f s" % (" ".join(cmd), r.returncode, time.time() - t0))
    if r.returncode != 0:
        fail("exit %d\nstdout:\n%s\nstderr:\n%s" % (r.returncode, r.stdout[-4000:], r.stderr[-4000:]))
    return r


def check_xml(exe):
    r = subprocess.run([exe, "--xml"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60,
                       env=dict(os.environ, SLICER_HOME="/nonexistent"))
    if r.returncode != 0:
        fail("%s --xml: exit %d" % (exe, r.returncode))
    try:
        doc = xml.dom.minidom.parseString(r.stdout)
    except Exception as e:  # noqa: BLE001
        fail("%s --xml is not XML: %s" % (exe, e))
    if doc.documentElement.tagName != "executable":
        fail("%s --xml: root element <%s>, expected <executable>" % (exe, doc.documentElement.tagName))


def test_install(args):
    prefix = os.path.join(args.scratch, "prefix")
    t0 = time.time()
    run(["cmake", "--install", args.build, "--prefix", prefix])
    t_install = time.time() - t0
    libdir = "lib"
    if not os.path.isdir(os.path.join(prefix, "lib", "graftwatch")):
        cands = [d for d in os.listdir(prefix) if d.startswith("lib")]
        for c in cands:
            if os.path.isdir(os.path.join(prefix, c, "graftwatch")):
                libdir = c
    cli = os.path.join(prefix, libdir, "graftwatch", "cli-modules")
    for app in args.apps:
        for d in (os.path.join(prefix, "bin"), cli):
            exe = os.path.join(d, app)
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                fail("not installed: " + exe)
        check_xml(os.path.join(cli, app))
    print("%d apps in bin/ and %s/graftwatch/cli-modules/, each answers --xml with <executable>" %
          (len(args.apps), libdir))
    cfg = os.path.join(prefix, libdir, "cmake", "GraftWatch", "GraftWatchConfig.cmake")
    if not os.path.isfile(cfg):
        fail("not installed: " + cfg)
    if not os.path.isfile(os.path.join(prefix, "include", "gw", "io", "image_io.h")):
        fail("public headers not installed")
    if os.path.isdir(os.path.join(args.source, "workflow")) and not os.path.isfile(
            os.path.join(prefix, "share", "graftwatch", "workflow", "Snakefile")):
        fail("the Snakemake workflow is not installed in share/graftwatch/workflow")
    build = os.path.join(args.scratch, "downstream-build")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    t0 = time.time()
    r = run(["cmake", "-S", os.path.join(args.source, "tests", "integration", "downstream"), "-B", build] + gen +
            ["-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_PREFIX_PATH=" + prefix])
    if ("apps in %s/bin" % os.path.realpath(prefix)) not in r.stdout and ("apps in %s/bin" % prefix) not in r.stdout:
        fail("GraftWatch_BIN_DIR does not point to %s/bin:\n%s" % (prefix, r.stdout))
    run(["cmake", "--build", build])
    t_build = time.time() - t0
    work = os.path.join(args.scratch, "run")
    os.makedirs(work)
    r = run([os.path.join(build, "downstream"), work])
    print(r.stdout.strip())
    print("install %.1f s; downstream configure + build %.1f s" % (t_install, t_build))
    print("OK")


def test_deb(args):
    if not shutil.which("cpack") or not shutil.which("dpkg-deb"):
        print("SKIP: cpack or dpkg-deb missing")
        return 77
    out = os.path.join(args.scratch, "package")
    t0 = time.time()
    run(["cpack", "-G", "DEB", "-B", out, "--config", os.path.join(args.build, "CPackConfig.cmake")])
    debs = [f for f in os.listdir(out) if f.endswith(".deb")]
    if len(debs) != 1:
        fail("expected one .deb in %s: %s" % (out, os.listdir(out)))
    deb = os.path.join(out, debs[0])
    print("%s: %.1f MB in %.1f s" % (debs[0], os.path.getsize(deb) / 1e6, time.time() - t0))
    info = run(["dpkg-deb", "-I", deb]).stdout
    for field in ("Package: graftwatch", "Depends:", "Architecture:"):
        if field not in info:
            fail("control lacks %r:\n%s" % (field, info))
    listing = run(["dpkg-deb", "-c", deb]).stdout
    wanted = ["./usr/lib/cmake/GraftWatch/GraftWatchConfig.cmake", "./usr/share/graftwatch/workflow/Snakefile"]
    for app in args.apps:
        wanted += ["./usr/bin/" + app, "/graftwatch/cli-modules/" + app]
    missing = [w for w in wanted if w not in listing]
    if missing:
        fail("not in the package: %s" % missing)
    print("package holds %d apps (bin + Slicer cli-modules), the CMake package and the workflow" % len(args.apps))
    print("OK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("test", choices=["install", "deb"])
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--scratch", required=True)
    ap.add_argument("--apps", nargs="+", required=True)
    args = ap.parse_args()
    if os.path.exists(args.scratch):
        shutil.rmtree(args.scratch)
    os.makedirs(args.scratch)
    rc = test_install(args) if args.test == "install" else test_deb(args)
    if rc != 77 and not os.environ.get("GW_KEEP_TEST_OUTPUT"):
        shutil.rmtree(args.scratch, ignore_errors=True)
    sys.exit(rc or 0)


if __name__ == "__main__":
    main()
