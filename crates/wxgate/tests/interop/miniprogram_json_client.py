#!/usr/bin/env python3
"""Drive a running wxgate as WeChat drives a mini-program with 数据格式 JSON.

usage: miniprogram_json_client.py BASE_URL TOKEN ENCODING_AES_KEY APPID

BASE_URL serves /wx/mini-plain, /wx/mini-compat and /wx/mini-safe, mini-programs that
hand the user_enter_tempsession event to customer service (kf2001@gh_test). Everything
WeChat does is written out here, with `cryptography` for AES and hashlib for SHA1 (no
code shared with wxgate): the JSON push, its encryption (16 random bytes, the 4-byte
length, the message, the AppID; PKCS#7 to 32 bytes; AES-256-CBC with the key's first
16 bytes as IV), msg_signature over the Encrypt value; then the JSON envelope of the
reply is checked and opened the same way. Before that, the script checks itself
against the documentation's vector. Prints "OK ..." or "FAIL ..." per check and exits
1 if any failed.
"""
import base64
import hashlib
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BASE, TOKEN, AES_KEY, APPID = sys.argv[1:5]
failures = 0


def report(ok, name, detail=""):
    global failures
    if not ok:
        failures += 1
    print(("OK   " if ok else "FAIL ") + name + (": " + detail if detail else ""))


def signature(*parts):
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def key_of(k43):
    return base64.b64decode(k43 + "=")


def encrypt(key, trailer, message, random16):
    body = random16 + struct.pack(">I", len(message)) + message + trailer.encode()
    pad = 32 - len(body) % 32
    body += bytes([pad]) * pad
    cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(cipher.update(body) + cipher.finalize()).decode()


def decrypt(key, text):
    cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = cipher.update(base64.b64decode(text)) + cipher.finalize()
    plain = plain[: -plain[-1]]
    length = struct.unpack(">I", plain[16:20])[0]
    return plain[20 : 20 + length].decode(), plain[20 + length :].decode()


def self_check():
    """The documentation's vector (mini-program message push, JSON, safe mode)."""
    key = key_of("A" * 43)
    encrypted = encrypt(key, "wxba5fad812f8e6fb9", b'{"demo_resp":"good luck"}', b"707722b803182950")
    report(
        encrypted == "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
        and signature("AAAAA", "1713424427", "415670741", encrypted) == "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1",
        "this script reproduces the documentation's encrypted JSON reply",
    )


def post(path, query, body):
    url = BASE + path + "?" + urllib.parse.urlencode(query)
    request = urllib.request.Request(
        url, data=body.encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def tempsession(ts):
    return json.dumps(
        {
            "ToUserName": "gh_test",
            "FromUserName": "oInteropUser",
            "CreateTime": ts,
            "MsgType": "event",
            "Event": "user_enter_tempsession",
            "SessionFrom": "wxapp",
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def check_reply(account, reply_text):
    reply = json.loads(reply_text)
    ok = (
        reply.get("MsgType") == "transfer_customer_service"
        and reply.get("ToUserName") == "oInteropUser"
        and reply.get("FromUserName") == "gh_test"
        and isinstance(reply.get("CreateTime"), int)
        and abs(reply["CreateTime"] - time.time()) < 60
        and reply.get("TransInfo", {}).get("KfAccount") == "kf2001@gh_test"
    )
    report(ok, f"{account}: the reply is a JSON transfer_customer_service", reply_text[:160])


def open_envelope(account, key, body):
    envelope = json.loads(body)
    names = list(envelope)
    report(names == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"], f"{account}: envelope fields", str(names))
    report(isinstance(envelope.get("TimeStamp"), int), f"{account}: TimeStamp is a JSON number")
    expected = signature(TOKEN, str(envelope["TimeStamp"]), envelope["Nonce"], envelope["Encrypt"])
    report(expected == envelope["MsgSignature"], f"{account}: MsgSignature verifies")
    plain, trailer = decrypt(key, envelope["Encrypt"])
    report(trailer == APPID, f"{account}: the trailer is the AppID", trailer)
    return plain


def main():
    self_check()
    key = key_of(AES_KEY)
    for mode in ["plain", "compat", "safe"]:
        account = f"mini-{mode}"
        path = f"/wx/{account}"
        ts = str(int(time.time()))
        nonce = str(int.from_bytes(os.urandom(4), "big"))
        query = {"signature": signature(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "oInteropUser"}
        message = tempsession(int(ts))
        if mode == "plain":
            status, content_type, body = post(path, query, message)
            report(status == 200 and content_type.startswith("application/json"), f"{account}: 200 JSON", f"HTTP {status} {content_type}")
            check_reply(account, body)
            continue
        encrypted = encrypt(key, APPID, message.encode(), os.urandom(16))
        query = dict(query, encrypt_type="aes", msg_signature=signature(TOKEN, ts, nonce, encrypted))
        if mode == "safe":
            push = json.dumps({"ToUserName": "gh_test", "Encrypt": encrypted})
        else:
            push = json.dumps(dict(json.loads(message), Encrypt=encrypted), ensure_ascii=False)
        status, content_type, body = post(path, query, push)
        report(status == 200 and content_type.startswith("application/json"), f"{account}: 200 JSON", f"HTTP {status} {content_type}")
        try:
            check_reply(account, open_envelope(account, key, body))
        except Exception as err:  # noqa: BLE001 - report any failure as FAIL
            report(False, f"{account}: the envelope opens", f"{err!r} {body[:160]!r}")
        forged = dict(query, msg_signature=signature(TOKEN, ts, nonce, encrypted + "x"))
        status, _, _ = post(path, forged, push)
        report(status == 403, f"{account}: a forged msg_signature is refused", f"HTTP {status}")
    print(f"{failures} failed")
    sys.exit(1 if failures else 0)


main()
