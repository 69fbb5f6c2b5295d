#!/usr/bin/env python3
"""Writes the hostile layer tars in this directory (see README.md).

Each file is named for the outcome berth must produce:
  reject-*.tar   unpacking fails with an error naming the entry, nothing is
                 written outside the snapshot and no snapshot is committed;
  contain-*.tar  unpacking succeeds and everything lands inside the snapshot.
"Outside" for absolute targets is /tmp/berth-hostile-outside (the tests create
it with a file `victim` and check it is untouched); relative escapes climb
out of the snapshot directory into the test's own scratch directory.

Usage: python3 generate.py [OUTDIR]   (default: this script's directory)
"""
import io
import os
import sys
import tarfile

OUT = "/tmp/berth-hostile-outside"
UP = "../" * 12  # more than deep enough to leave any snapshot dir


def info(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, pax=None):
    t = tarfile.TarInfo(name)
    t.type = kind
    t.mode = 0o755 if kind in (tarfile.DIRTYPE, tarfile.SYMTYPE) else mode
    t.mtime = 0
    t.uid = t.gid = 0
    t.uname = t.gname = ""
    t.linkname = link
    t.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        t.pax_headers = pax
    return t, data


def f(name, data=b"pwned\n", **kw):
    return info(name, data=data, **kw)


def d(name):
    return info(name, tarfile.DIRTYPE)


def sym(name, target):
    return info(name, tarfile.SYMTYPE, link=target)


def hard(name, target):
    return info(name, tarfile.LNKTYPE, link=target)


CASES = {
    # Path traversal in names.
    "reject-dotdot": [f("../pwned")],
    "reject-dotdot-nested": [d("a"), f("a/../../pwned")],
    "reject-dotdot-deep": [f(UP + "tmp/berth-hostile-outside/pwned")],
    "reject-dotdot-pax-path": [f("innocent", pax={"path": "../pax-pwned"})],
    "reject-dotdot-gnu-longname": [f("x" * 120 + "/" + UP + "gnu-pwned")],
    "reject-dotdot-dir": [d("../pwned-dir")],
    "reject-dotdot-symlink-entry": [sym("../pwned-link", "/etc/passwd")],
    # Symlinks pointing out, then written through.
    "reject-symlink-abs-then-file": [sym("evil", OUT), f("evil/pwned")],
    "reject-symlink-rel-then-file": [sym("evil", UP + "tmp"), f("evil/pwned")],
    "reject-symlink-chain-then-file": [
        d("d"),
        sym("d/up", "../.."),
        sym("evil", "d/up"),
        f("evil/pwned"),
    ],
    "reject-symlink-then-dir": [sym("evil", OUT), d("evil/sub")],
    "reject-symlink-then-symlink": [sym("evil", OUT), sym("evil/pwned", "/etc/passwd")],
    "reject-symlink-loop": [sym("a", "b"), sym("b", "a"), f("a/pwned")],
    "reject-symlink-parent-dotdot": [d("d"), sym("d/evil", "../../.."), f("d/evil/pwned")],
    # Hard links pointing out, or through a link out.
    "reject-hardlink-dotdot": [hard("h", UP + "tmp/berth-hostile-outside/victim")],
    "reject-hardlink-abs": [hard("h", OUT + "/victim")],
    "reject-hardlink-through-symlink": [sym("evil", OUT), hard("h", "evil/victim")],
    "reject-hardlink-missing": [hard("h", "does/not/exist")],
    "reject-hardlink-to-directory": [d("d"), hard("h", "d")],
    "reject-hardlink-pax-linkpath": [
        f("target"),
        info("h", tarfile.LNKTYPE, link="target", pax={"linkpath": UP + "tmp/berth-hostile-outside/victim"}),
    ],
    # Whiteouts of the parent, the dir itself, or through a link out.
    "reject-whiteout-dotdot": [info(".wh..."), ],
    "reject-whiteout-dotdot-nested": [d("a"), info("a/.wh...")],
    "reject-whiteout-dot": [d("a"), info("a/.wh..")],
    "reject-whiteout-empty": [d("a"), info("a/.wh.")],
    "reject-whiteout-through-symlink": [sym("evil", OUT), info("evil/.wh.victim")],
    "reject-opaque-through-symlink": [sym("evil", OUT), info("evil/.wh..wh..opq")],
    # Things that look hostile but must stay inside.
    "contain-absolute-name": [f(OUT + "/pwned")],
    "contain-symlink-then-overwrite": [sym("evil", OUT + "/victim"), f("evil", b"replaced\n")],
    "contain-hardlink-to-symlink-then-overwrite": [
        sym("s", OUT + "/victim"),
        hard("h", "s"),
        f("h", b"replaced\n"),
    ],
    "contain-dir-replaces-symlink": [sym("evil", OUT), d("evil"), f("evil/inside")],
    "contain-symlink-inside": [d("usr/lib"), sym("lib", "usr/lib"), f("lib/inside")],
}


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, entries in sorted(CASES.items()):
        buf = io.BytesIO()
        # PAX records only go out in the PAX format; everything else is GNU.
        fmt = tarfile.PAX_FORMAT if any(t.pax_headers for t, _ in entries) else tarfile.GNU_FORMAT
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            for t, data in entries:
                tar.addfile(t, io.BytesIO(data) if data else None)
        with open(os.path.join(outdir, name + ".tar"), "wb") as out:
            out.write(buf.getvalue())
    print(f"wrote {len(CASES)} cases to {outdir}")


if __name__ == "__main__":
    main()
