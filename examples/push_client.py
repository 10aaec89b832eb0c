"""
The Push tutorial's website side (``post.php``): after saving a blog entry,
push it to the WebSocket server (``examples/push_server.py``).

    python examples/push_client.py --category kittensCategory --title "Kittens!" \\
        [--article "..."] [--url http://127.0.0.1:5555/]

Prints the server's answer, e.g. ``{"delivered": 3}``.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request


def push_entry(entry, url="http://127.0.0.1:5555/", timeout=5.0):
    """POST ``entry`` (a dict with ``category``) as JSON; return the server's parsed answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(entry).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:5555/")
    parser.add_argument("--category", required=True)
    parser.add_argument("--title", required=True)
    parser.add_argument("--article", default="")
    args = parser.parse_args(argv)
    # This is our new stuff
    entry_data = {
        "category": args.category,
        "title": args.title,
        "article": args.article,
        "when": time.time(),
    }
    print(json.dumps(push_entry(entry_data, args.url)))


if __name__ == "__main__":
    main()
