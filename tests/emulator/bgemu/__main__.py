"""python -m bgemu --port N [--time-scale F]: the emulator on 127.0.0.1 (never another address)."""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

from bgemu import check_moto
from bgemu import install


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass  # one line per API call drowns the errors worth reading


def interrupt(*unused):
    raise KeyboardInterrupt


def faster_model_loading():
    """botocore reads its JSON models with ``object_pairs_hook=OrderedDict``: a Python call per JSON object, most of
    the emulator's start (moto's EC2 loads the large EC2 model at import).  Plain dicts keep the order too, and the
    C decoder builds them; this process only reads the models, so it reads them that way."""
    import json

    from botocore import loaders

    def load_file(self, full_path, open_method):
        if not os.path.isfile(full_path):
            return None
        with open_method(full_path, "rb") as fp:
            return json.loads(fp.read().decode("utf-8"))

    loaders.JSONFileLoader._load_file = load_file


def main():
    parser = argparse.ArgumentParser(prog="bgemu", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--time-scale", type=float, default=1.0, help="real seconds per AWS second (0.01: 100x)")
    args = parser.parse_args()
    faster_model_loading()
    check_moto()
    from bgemu import instances

    try:
        instances.require_root()
    except instances.NotRoot as e:
        sys.exit(f"bgemu: {e}")

    from bgemu import codedeploy
    from bgemu import dataplane
    from bgemu import ecr
    from bgemu import launchtemplates
    from bgemu import lifecycle
    from bgemu import s3cond
    from bgemu import targethealth
    from bgemu.clock import CLOCK
    from bgemu.server import Emulator
    from bgemu.server import ticker

    CLOCK.scale = args.time_scale
    install(instances, lifecycle, targethealth, codedeploy, dataplane, s3cond, ecr, launchtemplates)
    stop = threading.Event()
    threading.Thread(target=ticker, args=(stop,), daemon=True).start()
    server = make_server("127.0.0.1", args.port, Emulator(), threaded=True, request_handler=QuietHandler)
    # SIGTERM (how tests stop it) unwinds like Ctrl-C through `finally` and atexit: every instance's processes and
    # namespaces, and the listeners' HAProxies and their files, are removed
    signal.signal(signal.SIGTERM, interrupt)
    print(f"bgemu listening on http://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        instances.reset()


if __name__ == "__main__":
    main()
