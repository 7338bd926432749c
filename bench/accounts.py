#!/usr/bin/env python3
"""Bulk account files for the side-by-side benchmark (bench/compare.sh).

Every server gets accounts user0 .. user{N-1}@DOMAIN with one shared password,
stored the way the server itself stores them (SCRAM-SHA-1 keys, 4096 PBKDF2
iterations, a random salt per account), written straight into its storage
format instead of going through N slow admin commands:

  natterd   lines "userN@domain password" for `natterd user import` (stdin)
  ejabberd  a Mnesia text dump of the `passwd` table for `ejabberdctl load`
  prosody   data_path/<host>/accounts/<user>.dat files (internal_hashed)

Usage: accounts.py natterd|ejabberd|prosody --count N --prefix user
       --domain localhost --password PW --out PATH [--unique-salts]
"""
import argparse
import base64
import hashlib
import hmac
import multiprocessing
import os
import sys

ITERATIONS = 4096


def scram_sha1(password: bytes, salt: bytes):
    salted = hashlib.pbkdf2_hmac("sha1", password, salt, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    stored_key = hashlib.sha1(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).digest()
    return stored_key, server_key


def _job(args):
    i, password = args
    # Prosody uses the salt as a raw string, so keep it printable everywhere.
    salt = os.urandom(12).hex().encode()
    stored, server = scram_sha1(password, salt)
    return i, salt, stored, server


def hashed(count, password, unique_salts):
    """(i, salt, stored_key, server_key) for every account.

    By default all accounts share one random salt, so one PBKDF2 serves them
    all (the servers' login work is the same either way: they never compare
    salts across accounts). --unique-salts hashes each account separately,
    on every core (about 1.5-4 ms per account here)."""
    if not unique_salts:
        _, salt, stored, server = _job((0, password.encode()))
        for i in range(count):
            yield i, salt, stored, server
        return
    jobs = [(i, password.encode()) for i in range(count)]
    with multiprocessing.Pool(os.cpu_count() or 1) as pool:
        yield from pool.imap(_job, jobs, chunksize=256)


def lua_string(b: bytes) -> str:
    return '"' + "".join(
        c if c.isalnum() or c in "-_." else "\\%03d" % ord(c) for c in b.decode("latin-1")
    ) + '"'


def prosody_encode(node: str) -> str:
    # util.datamanager encodes every byte outside [%w_] as %XX
    return "".join(c if (c.isalnum() and c.isascii()) or c == "_" else "%%%02x" % ord(c) for c in node)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("server", choices=["natterd", "ejabberd", "prosody"])
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--prefix", default="user")
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--password", required=True)
    ap.add_argument("--out", required=True, help="file (natterd, ejabberd) or prosody data_path")
    ap.add_argument("--unique-salts", action="store_true", help="one salt (and PBKDF2) per account")
    a = ap.parse_args()

    if a.server == "natterd":
        with open(a.out, "w") as f:
            for i in range(a.count):
                f.write(f"{a.prefix}{i}@{a.domain} {a.password}\n")
        return

    if a.server == "ejabberd":
        b64 = lambda b: base64.b64encode(b).decode()
        with open(a.out, "w") as f:
            f.write("{tables,[{passwd,[{record_name,passwd},{attributes,[us,password]}]}]}.\n")
            for i, salt, stored, server in hashed(a.count, a.password, a.unique_salts):
                f.write(
                    '{passwd,{<<"%s%d">>,<<"%s">>},{scram,<<"%s">>,<<"%s">>,<<"%s">>,sha,%d}}.\n'
                    % (a.prefix, i, a.domain, b64(stored), b64(server), b64(salt), ITERATIONS)
                )
        return

    # prosody: data_path/<encoded host>/accounts/<encoded user>.dat
    d = os.path.join(a.out, prosody_encode(a.domain), "accounts")
    os.makedirs(d, exist_ok=True)
    for i, salt, stored, server in hashed(a.count, a.password, a.unique_salts):
        with open(os.path.join(d, prosody_encode(f"{a.prefix}{i}") + ".dat"), "w") as f:
            f.write(
                "return {\n"
                f'\t["iteration_count"] = {ITERATIONS};\n'
                f'\t["salt"] = {lua_string(salt)};\n'
                f'\t["server_key"] = "{server.hex()}";\n'
                f'\t["stored_key"] = "{stored.hex()}";\n'
                "};\n"
            )


if __name__ == "__main__":
    sys.exit(main())
