"""Start an in-process moto S3 server on a free loopback port (the project's stand-in for S3)."""

from __future__ import annotations

import logging

from moto.server import ThreadedMotoServer

#: moto accepts any credentials unless authentication is switched on (see s3_fixtures.enforce_moto_auth)
ACCESS_KEY_ID = "test"
SECRET_ACCESS_KEY = "test"
REGION = "us-east-1"


def start_moto_server() -> tuple[ThreadedMotoServer, str]:
    """Start a moto server on 127.0.0.1 with an OS-chosen port; return (server, endpoint URL).

    The caller stops it with `server.stop()`. Real HTTP: boto3 talks to it exactly as to any S3 endpoint.
    """
    # werkzeug logs every request at INFO through its own stderr handler: keep failure output readable
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"
