"""Build hook for the optional C helper; all metadata is in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        # optional: without a compiler the install still succeeds and the
        # fast path uses its pure-Python unmasking.
        Extension(
            "ratchetpy.websocket._speedups",
            ["ratchetpy/websocket/_speedups.c"],
            optional=True,
        )
    ]
)
