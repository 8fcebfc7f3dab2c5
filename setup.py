"""Declares the one C extension, gochan._core; the rest is in pyproject.toml.

Environment variables choose extra compiler flags:

    GOCHAN_SANITIZE=address,undefined   -fsanitize=... (any list gcc accepts)
    GOCHAN_DEBUG=1                      -O0 -g, asserts on

A sanitized extension loads into a plain interpreter with the runtime
preloaded: LD_PRELOAD=$(gcc -print-file-name=libasan.so) python ...

libuv is found with ``pkg-config libuv`` and linked as a shared library.
"""

import os
import shlex
import subprocess
import sys
from glob import glob

from setuptools import Extension, setup

LIBUV_MISSING = (
    "gochan needs libuv, found with pkg-config; install both: "
    "apt-get install libuv1-dev pkg-config (Debian, Ubuntu), "
    "brew install libuv pkg-config (macOS), "
    "dnf install libuv-devel pkgconf-pkg-config (Fedora)"
)


def pkg_config(package):
    """Returns the compile and link flags of a pkg-config package, split."""
    try:
        result = subprocess.run(
            ["pkg-config", "--cflags", "--libs", package],
            capture_output=True,
            text=True,
        )
    except OSError:
        sys.exit("error: " + LIBUV_MISSING)
    if result.returncode != 0:
        sys.exit("error: " + LIBUV_MISSING)
    return shlex.split(result.stdout)


include_dirs = ["csrc/core", "csrc/py"]
library_dirs = []
libraries = []
extra_compile_args = [
    "-std=c11",
    "-D_GNU_SOURCE",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
]
extra_link_args = []

for flag in pkg_config("libuv"):
    if flag.startswith("-I"):
        include_dirs.append(flag[2:])
    elif flag.startswith("-L"):
        library_dirs.append(flag[2:])
        extra_link_args.append("-Wl,-rpath," + flag[2:])
    elif flag.startswith("-l"):
        libraries.append(flag[2:])
    else:
        extra_compile_args.append(flag)
        extra_link_args.append(flag)

sanitize = os.environ.get("GOCHAN_SANITIZE", "")
debug = os.environ.get("GOCHAN_DEBUG", "0") not in ("", "0")
if sanitize:
    flags = ["-fsanitize=" + sanitize, "-fno-omit-frame-pointer"]
    if "undefined" in sanitize.split(","):
        flags.append("-fno-sanitize-recover=all")
    extra_compile_args += flags
    extra_link_args += flags
if debug:
    extra_compile_args += ["-O0", "-UNDEBUG"]
if sanitize or debug:
    extra_compile_args.append("-g")

setup(
    ext_modules=[
        Extension(
            "gochan._core",
            sources=sorted(glob("csrc/core/*.c") + glob("csrc/py/*.c")),
            depends=sorted(glob("csrc/core/*.h") + glob("csrc/py/*.h")),
            include_dirs=include_dirs,
            library_dirs=library_dirs,
            libraries=libraries,
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
        )
    ]
)
