"""OMEMO (XEP-0384) clients for the interop tests: slixmpp with slixmpp-omemo.

slixmpp-omemo speaks both OMEMO generations (``urn:xmpp:omemo:2``, called
twomemo, and the older ``eu.siacs.conversations.axolotl``, oldmemo) on top of
python-omemo. Its own ``encrypt_message``/``decrypt_message`` handle only
oldmemo messages in 2.2.0: omemo:2 encrypts a XEP-0420 stanza-content
envelope, which the plugin does not build yet. For omemo:2 this module
builds and reads the envelope itself and hands it to the same library
session manager, so both generations run the real key agreement (X3DH),
double ratchet and payload encryption.

Each device keeps its keys in a JSON file of its own (``storage_path``),
so a device that disconnects and logs in again is the same OMEMO device.
Trust is blind trust before verification (BTBV): new devices are trusted.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, FrozenSet, Optional
from xml.etree import ElementTree as ET

import oldmemo
import twomemo
from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import DeviceInformation, JSONType
from slixmpp.jid import JID
from slixmpp.plugins import register_plugin
from slixmpp.stanza import Message
from slixmpp_omemo import XEP_0384

from helpers import DEFAULT_PLUGINS, Account, make_client

#: ``urn:xmpp:omemo:2`` (XEP-0384 0.8+).
V2 = twomemo.twomemo.NAMESPACE
#: ``eu.siacs.conversations.axolotl`` (XEP-0384 0.3, what most clients deployed).
V1 = oldmemo.oldmemo.NAMESPACE
SCE = "urn:xmpp:sce:1"
EME = "urn:xmpp:eme:0"
#: The body a client that cannot decrypt shows (sent in the clear).
HINT = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."

PLUGINS = DEFAULT_PLUGINS + ("xep_0060", "xep_0163", "xep_0115", "xep_0280", "xep_0297",
                             "xep_0059", "xep_0313", "xep_0334", "xep_0384")


class FileStorage(Storage):
    """python-omemo's key-value storage in one JSON file, written on every change."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.data: dict[str, JSONType] = (
            json.loads(path.read_text()) if path.exists() else {})

    async def _load(self, key: str) -> Maybe[JSONType]:
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.path.write_text(json.dumps(self.data))

    async def _delete(self, key: str) -> None:
        if self.data.pop(key, None) is not None:
            self.path.write_text(json.dumps(self.data))


class XEP_0384Impl(XEP_0384):  # pylint: disable=invalid-name
    """slixmpp-omemo's plugin with a file storage (``storage_path`` in its
    config) and BTBV trust."""

    default_config = {"fallback_message": HINT, "storage_path": None}

    def plugin_init(self) -> None:
        self._storage = FileStorage(Path(self.storage_path))
        super().plugin_init()

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def _btbv_enabled(self) -> bool:
        return True

    async def _devices_blindly_trusted(self, blindly_trusted: FrozenSet[DeviceInformation],
                                       identifier: Optional[str]) -> None:
        return None

    async def _prompt_manual_trust(self, manually_trusted: FrozenSet[DeviceInformation],
                                   identifier: Optional[str]) -> None:
        raise AssertionError(f"BTBV should never ask for a manual trust decision: "
                             f"{manually_trusted}")


register_plugin(XEP_0384Impl)


def make_omemo_client(account: Account, resource: str, storage_dir: Path):
    """A client with the OMEMO plugin; its keys live in ``storage_dir/RESOURCE.json``."""
    storage_dir.mkdir(parents=True, exist_ok=True)
    client = make_client(account, resource, plugins=PLUGINS[:-1])
    client.register_plugin("xep_0384", {"storage_path": str(storage_dir / f"{resource}.json")})
    return client


async def own_device_id(client) -> int:
    sm = await client.plugin["xep_0384"].get_session_manager()
    return (await sm.get_own_device_information())[0].device_id


async def known_devices(client, bare_jid: str) -> dict[int, frozenset[str]]:
    """The devices (id -> OMEMO namespaces) the client knows of ``bare_jid``,
    from device lists it got by PEP (its own device included)."""
    sm = await client.plugin["xep_0384"].get_session_manager()
    return {d.device_id: d.namespaces for d in await sm.get_device_information(bare_jid)}


# --------------------------------------------------------------------------
# XEP-0420 stanza content encryption, the plaintext of an omemo:2 message

def _sce_envelope(body: str, sender: JID, to: JID) -> bytes:
    env = ET.Element(f"{{{SCE}}}envelope")
    content = ET.SubElement(env, f"{{{SCE}}}content")
    ET.SubElement(content, "{jabber:client}body").text = body
    # Random-length padding hides the body's length (XEP-0420 §6).
    ET.SubElement(env, f"{{{SCE}}}rpad").text = secrets.token_urlsafe(secrets.randbelow(40) + 1)
    ET.SubElement(env, f"{{{SCE}}}time",
                  stamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    ET.SubElement(env, f"{{{SCE}}}to", jid=to.bare)
    ET.SubElement(env, f"{{{SCE}}}from", jid=sender.full)
    return ET.tostring(env)


def _sce_body(plaintext: bytes, outer: Message) -> str:
    """The body of an envelope, after the affix checks XEP-0420 §5 asks for:
    ``from`` and ``to`` must match the stanza that carried it."""
    env = ET.fromstring(plaintext)
    assert env.tag == f"{{{SCE}}}envelope", plaintext
    sender = JID(env.find(f"{{{SCE}}}from").get("jid"))
    to = JID(env.find(f"{{{SCE}}}to").get("jid"))
    assert sender.bare == outer["from"].bare, (sender, outer["from"])
    assert to.bare == outer["to"].bare, (to, outer["to"])
    return env.find(f"{{{SCE}}}content/{{jabber:client}}body").text


# --------------------------------------------------------------------------
# encrypt and decrypt

async def encrypt(client, to: str, text: str, generation: str) -> Message:
    """A chat message to ``to`` carrying ``text`` encrypted with OMEMO
    ``generation`` (V2 or V1) for every device of ``to`` and every other device
    of the sender, with only the hint body in the clear. Not sent yet."""
    xep = client.plugin["xep_0384"]
    msg = client.make_message(mto=JID(to), mtype="chat")
    if generation == V1:
        msg["body"] = text
        encrypted, errors = await xep.encrypt_message(msg, JID(to))
        assert not errors, errors
        assert encrypted is not None and encrypted.xml.find(f"{{{V1}}}encrypted") is not None
        assert encrypted.xml.find(f"{{{V2}}}encrypted") is None, "oldmemo only, as asked"
        msg = encrypted
    else:
        await xep.refresh_device_lists({JID(to)})
        sm = await xep.get_session_manager()
        envelope = _sce_envelope(text, client.boundjid, JID(to))
        messages, errors = await sm.encrypt(frozenset({JID(to).bare}), {V2: envelope},
                                            backend_priority_order=[V2])
        assert not errors, errors
        assert len(messages) == 1, messages
        msg["body"] = HINT
        msg.append(twomemo.etree.serialize_message(next(iter(messages))))
        msg.enable("store")
    eme = ET.SubElement(msg.xml, f"{{{EME}}}encryption", namespace=generation)
    eme.set("name", "OMEMO")
    return msg


def payload_of(msg: Message) -> str:
    """The base64 ciphertext (``<payload/>``) of an encrypted message."""
    for ns in (V2, V1):
        p = msg.xml.find(f"{{{ns}}}encrypted/{{{ns}}}payload")
        if p is not None:
            return p.text
    raise AssertionError(f"no OMEMO payload in {msg}")


async def decrypt(client, msg: Message) -> tuple[str, str, int]:
    """(plaintext, generation, sending device id) of an OMEMO message (the
    message itself, or the stanza forwarded in a carbon or archive result)."""
    xep = client.plugin["xep_0384"]
    found = xep.is_encrypted(msg)
    assert len(found) == 1, f"expected one OMEMO generation in {msg}"
    generation = next(iter(found))
    if generation == V1:
        plain, device = await xep.decrypt_message(msg)
        return plain["body"], V1, device.device_id
    sm = await xep.get_session_manager()
    element = msg.xml.find(f"{{{V2}}}encrypted")
    parsed = twomemo.etree.parse_message(element, msg["from"].bare)
    plaintext, device, _ = await sm.decrypt(parsed)
    return _sce_body(plaintext, msg), V2, device.device_id


async def wait_until(check, what: str, timeout: float = 10.0, every: float = 0.1):
    """Polls the coroutine function ``check`` until it returns a true value."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(every)
