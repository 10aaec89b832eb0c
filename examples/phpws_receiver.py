"""
php2php, the receiving script: connects to a ``phpws`` route under a name
(its ``Ident``) and prints the ``message`` of every packet other scripts
send it with ``feedback`` to that name, until it gets "bye".

    python examples/phpws_receiver.py ws://127.0.0.1:8080/php --name receiver

and in another shell ``python examples/phpws_sender.py ... --to receiver hello bye``.
"""

import argparse

from ratchetpy.client.phpws import connect_php


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--name", default="receiver")
    args = parser.parse_args(argv)
    with connect_php(args.url, ident=args.name) as php:
        print(f"listening as {args.name}", flush=True)
        for packet in php:
            print(packet.get("message"), flush=True)
            if packet.get("message") == "bye":
                break


if __name__ == "__main__":
    main()
