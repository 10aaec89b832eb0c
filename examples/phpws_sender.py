"""
php2php, the sending script: sends each MESSAGE to the script connected
under the name given by ``--to`` (see ``examples/phpws_receiver.py``).

    python examples/phpws_sender.py ws://127.0.0.1:8080/php --to receiver hello bye
"""

import argparse

from ratchetpy.client.phpws import connect_php


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--to", required=True, help="the receiver's name (Ident)")
    parser.add_argument("--name", default="sender")
    parser.add_argument("messages", nargs="+")
    args = parser.parse_args(argv)
    with connect_php(args.url, ident=args.name) as php:
        for message in args.messages:
            php.feedback(message, ident=args.to)


if __name__ == "__main__":
    main()
