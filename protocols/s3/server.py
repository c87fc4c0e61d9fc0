"""Run the S3 app under uvicorn: ``python -m protocols.s3.server`` (started by ``tessera serve``).

Settings arrive in the environment (TESSERA_DATA, TESSERA_S3_*), so every
uvicorn worker process opens the store itself.
"""

from __future__ import annotations

import os
import sys

import uvicorn

from gateway.config import parse_listen


def main() -> int:
    host, port = parse_listen(os.environ.get("TESSERA_S3_LISTEN", "0.0.0.0:9000"))
    workers = int(os.environ.get("TESSERA_S3_WORKERS", "2"))
    cert, key = os.environ.get("TESSERA_S3_CERT"), os.environ.get("TESSERA_S3_KEY")
    uvicorn.run("protocols.s3.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                ssl_certfile=cert or None, ssl_keyfile=key or None, log_level=os.environ.get("TESSERA_LOG", "warning"),
                access_log=False, timeout_keep_alive=30, server_header=False, date_header=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
