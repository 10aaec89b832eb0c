# The twistd plugin: `twistd ratchetpy --help`. The code is in ratchetpy.tap.
# No __init__.py in twisted/ or twisted/plugins/: this directory joins
# Twisted's own plugin package.
from twisted.application.service import ServiceMaker

ratchetpy = ServiceMaker(
    "ratchetpy", "ratchetpy.tap", "Run a Ratchet-style WebSocket server", "ratchetpy"
)
