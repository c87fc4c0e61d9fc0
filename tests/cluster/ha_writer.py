"""A client for the failover test: insert rows 0, 1, 2, ... through a libpq URL, one commit each, forever.

Prints ``ACK <id> <unix time>`` after each acknowledged commit and ``ERR <id> <unix time> <error>`` for a
failed attempt, then reconnects and retries the same id (``ON CONFLICT DO NOTHING``: a commit whose
acknowledgement was lost may have landed). Each row's payload is ``row-<id>``, so a reader can tell wrong
data from missing data. Run: ``python ha_writer.py URL``; stop it with SIGTERM.
"""

from __future__ import annotations

import sys
import time


def main(url: str) -> None:
    import psycopg

    conn: psycopg.Connection[tuple[object, ...]] | None = None
    i = 0
    while True:
        try:
            if conn is None:
                conn = psycopg.connect(url, autocommit=True)
            conn.execute("INSERT INTO acks (id, payload) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
                         (i, f"row-{i}"))
            print(f"ACK {i} {time.time():.3f}", flush=True)
            i += 1
        except psycopg.Error as e:
            print(f"ERR {i} {time.time():.3f} {type(e).__name__}", flush=True)
            if conn is not None:
                conn.close()
            conn = None
            time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1])
