#!/usr/bin/env python3
"""Writes two wrk scripts into OUT_DIR, each cycling through 64 pre-signed safe-mode
pushes of the same text message: xml.lua (<xml><ToUserName/><Encrypt/></xml> to
/wx/xml) and json.lua ({"ToUserName","Encrypt"} to /wx/json). The encryption is written
out with `cryptography`, as in tests/interop/miniprogram_json_client.py.

usage: gen-json-requests.py OUT_DIR
"""
import base64
import hashlib
import json
import os
import random
import struct
import sys
import time
from urllib.parse import urlencode

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

TOKEN = "benchToken123"
KEY = base64.b64decode("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" + "=")
APPID = "wx1234567890abcdef"


def sign(*parts):
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def encrypt(message):
    body = os.urandom(16) + struct.pack(">I", len(message)) + message + APPID.encode()
    pad = 32 - len(body) % 32
    body += bytes([pad]) * pad
    cipher = Cipher(algorithms.AES(KEY), modes.CBC(KEY[:16])).encryptor()
    return base64.b64encode(cipher.update(body) + cipher.finalize()).decode()


def message(fmt, ts, msg_id):
    if fmt == "json":
        return json.dumps({"ToUserName": "gh_bench", "FromUserName": "oBenchUser", "CreateTime": int(ts),
                           "MsgType": "text", "Content": "hello", "MsgId": msg_id}, separators=(",", ":"))
    return ("<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[oBenchUser]]></FromUserName>"
            f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[hello]]></Content><MsgId>{msg_id}</MsgId></xml>")


def lua_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    ts = str(int(time.time()))
    for fmt in ("xml", "json"):
        pool = []
        for _ in range(64):
            nonce = str(random.randrange(10**8, 10**10))
            encrypted = encrypt(message(fmt, ts, random.randrange(10**18, 10**19)).encode())
            query = {"signature": sign(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "oBenchUser",
                     "encrypt_type": "aes", "msg_signature": sign(TOKEN, ts, nonce, encrypted)}
            if fmt == "json":
                body = json.dumps({"ToUserName": "gh_bench", "Encrypt": encrypted})
            else:
                body = f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
            pool.append((f"/wx/{fmt}?" + urlencode(query), body))
        content_type = "application/json" if fmt == "json" else "text/xml"
        lines = ['wrk.method = "POST"', "local pool = {"]
        lines += [f"  {{{lua_str(p)}, {lua_str(b)}}}," for p, b in pool]
        lines += ["}", "local raw, n = {}, 0", "function init(args)", "  for i, r in ipairs(pool) do",
                  f'    raw[i] = wrk.format("POST", r[1], {{["Content-Type"] = "{content_type}"}}, r[2])',
                  "  end", "end", "function request()", "  n = n % #raw + 1", "  return raw[n]", "end"]
        with open(os.path.join(out, fmt + ".lua"), "w") as f:
            f.write("\n".join(lines) + "\n")


main()
