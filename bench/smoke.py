#!/usr/bin/env python3
"""Quick check that a server set up by bench/compare.sh works for the bench:
PLAIN (and SCRAM-SHA-1) login without TLS, resource bind, XEP-0198 enable,
and offline storage (user0 sends to offline user1, user1 logs in and gets it).

Usage: smoke.py --port P [--host 127.0.0.1] [--domain localhost]
                [--prefix user] [--password PW]
Exit 0 and prints "ok" on success.
"""
import argparse
import base64
import hashlib
import hmac
import os
import re
import socket
import sys
import time


class Conn:
    def __init__(self, host, port, domain):
        self.s = socket.create_connection((host, port), timeout=10)
        self.domain = domain
        self.buf = b""

    def send(self, data):
        self.s.sendall(data.encode())

    def until(self, pattern, timeout=10):
        deadline = time.time() + timeout
        rx = re.compile(pattern.encode(), re.S)
        while True:
            m = rx.search(self.buf)
            if m:
                out = self.buf[: m.end()]
                self.buf = self.buf[m.end():]
                return out.decode(errors="replace")
            if time.time() > deadline:
                raise RuntimeError(f"timeout waiting for {pattern!r}; got {self.buf[-500:]!r}")
            self.s.settimeout(max(0.1, deadline - time.time()))
            chunk = self.s.recv(65536)
            if not chunk:
                raise RuntimeError(f"closed waiting for {pattern!r}; got {self.buf[-500:]!r}")
            self.buf += chunk

    def open(self):
        self.send(
            f"<?xml version='1.0'?><stream:stream to='{self.domain}' version='1.0' "
            "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        )
        return self.until(r"</stream:features>")


def b64(b):
    return base64.b64encode(b).decode()


def login(host, port, domain, user, password, mech):
    c = Conn(host, port, domain)
    feats = c.open()
    if mech not in feats:
        raise RuntimeError(f"{mech} not offered: {feats}")
    if mech == "PLAIN":
        c.send(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
            + b64(f"\0{user}\0{password}".encode())
            + "</auth>"
        )
    else:  # SCRAM-SHA-1
        cnonce = b64(os.urandom(18))
        first_bare = f"n={user},r={cnonce}"
        c.send(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"
            + b64(("n,," + first_bare).encode())
            + "</auth>"
        )
        ch = c.until(r"</challenge>")
        sfirst = base64.b64decode(re.search(r">([^<]*)</challenge>", ch).group(1)).decode()
        parts = dict(p.split("=", 1) for p in sfirst.split(","))
        salted = hashlib.pbkdf2_hmac("sha1", password.encode(), base64.b64decode(parts["s"]), int(parts["i"]))
        ckey = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
        final_wo = f"c=biws,r={parts['r']}"
        auth_msg = f"{first_bare},{sfirst},{final_wo}".encode()
        sig = hmac.new(hashlib.sha1(ckey).digest(), auth_msg, hashlib.sha1).digest()
        proof = bytes(a ^ b for a, b in zip(ckey, sig))
        c.send(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            + b64(f"{final_wo},p={b64(proof)}".encode())
            + "</response>"
        )
    r = c.until(r"<success[^>]*/>|<success.*?</success>|<failure.*?</failure>")
    if "<success" not in r:
        raise RuntimeError(f"auth failed for {user}: {r}")
    feats = c.open()
    if "urn:xmpp:sm:3" not in feats:
        raise RuntimeError(f"no stream management (urn:xmpp:sm:3) offered: {feats}")
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>smoke</resource></bind></iq>")
    c.until(r"<iq[^>]*id=.b1.[^>]*>.*?</iq>")
    c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
    c.until(r"<enabled[^>]*>")
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--prefix", default="user")
    ap.add_argument("--password", default="benchpw")
    a = ap.parse_args()
    u0, u1 = f"{a.prefix}0", f"{a.prefix}1"
    c0 = login(a.host, a.port, a.domain, u0, a.password, "PLAIN")
    c0.send("<presence/>")
    token = os.urandom(6).hex()
    c0.send(f"<message to='{u1}@{a.domain}' type='chat' id='m1'><body>offline {token}</body></message>")
    c0.send("<r xmlns='urn:xmpp:sm:3'/>")
    c0.until(r"<a xmlns='urn:xmpp:sm:3'[^>]*>|<a [^>]*xmlns=.urn:xmpp:sm:3.[^>]*>")
    time.sleep(0.3)
    c1 = login(a.host, a.port, a.domain, u1, a.password, "SCRAM-SHA-1")
    c1.send("<presence/>")
    c1.until(f"offline {token}")
    c0.send("</stream:stream>")
    c1.send("</stream:stream>")
    print("ok")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001
        print(f"smoke failed: {e}", file=sys.stderr)
        sys.exit(1)
