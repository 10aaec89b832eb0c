"""
A backend script that feeds one browser by its uuid, as in
phpWebSocketServer's README: the page (``socketWebClient.js`` or any
client of a ``phpws`` route) got a uuid in its ``ready`` packet and passed
it to this script (through an AJAX call, say); the script reports its
progress to exactly that page.

    twistd -n ratchetpy --route /web=phpws --route /php=phpws
    python examples/phpws_feed.py ws://127.0.0.1:8080/php UUID [--steps 5] [--pause 1]
"""

import argparse
import time

from ratchetpy.client.phpws import connect_php


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("uuid", help="the browser's uuid (from its ready packet)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--pause", type=float, default=1.0)
    args = parser.parse_args(argv)
    with connect_php(args.url, ident="feeder") as php:
        for step in range(1, args.steps + 1):
            php.feedback(f"step {step} of {args.steps} done", uuid=args.uuid)
            print(f"sent step {step}", flush=True)
            time.sleep(args.pause)
        php.feedback("done", uuid=args.uuid)


if __name__ == "__main__":
    main()
