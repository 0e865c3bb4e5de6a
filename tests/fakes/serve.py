#!/usr/bin/env python3
"""serve.py - run one SaaS fake of tests/fakes/ on 127.0.0.1.

Usage: serve.py SERVICE PORT [--state FILE] [--verbose]
  SERVICE  heroku | netlify | statuspage | pagerduty | slack | aws | cloudflare
  PORT     a TCP port on 127.0.0.1; 0 picks a free one
  --state FILE  after every request, write the fake's state, config and the
                tail of its request log to FILE (JSON, replaced atomically)
  --verbose     log each request to stderr
Prints one line "ready PORT" on stdout once it listens; runs until SIGTERM
or SIGINT.  Python 3 standard library only, but for the aws fake, which
needs Debian's python3-botocore.
"""
import importlib
import os
import signal
import sys

SERVICES = ("heroku", "netlify", "statuspage", "pagerduty", "slack", "aws", "cloudflare")


def main(argv):
    args, state, verbose = [], None, False
    it = iter(argv)
    for a in it:
        if a == "--state":
            state = next(it, None)
            if not state:
                return usage()
        elif a == "--verbose":
            verbose = True
        elif a.startswith("-"):
            return usage()
        else:
            args.append(a)
    if len(args) != 2 or args[0] not in SERVICES or not args[1].isdigit():
        return usage()
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fakebase
    fake = importlib.import_module(args[0]).FAKE(state_file=state)
    server = fakebase.make_server(fake, int(args[1]), verbose=verbose)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        fake.flush()
    return 0


def usage():
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
