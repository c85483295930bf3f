#!/usr/bin/env python3
"""Drive a running wxgate the way WeChat does, with wechatpy doing the crypto.

usage: wechatpy_client.py BASE_URL TOKEN ENCODING_AES_KEY APPID

BASE_URL serves three accounts, /wx/plain, /wx/compat and /wx/safe, each an echo bot.
wechatpy signs every request, encrypts compat and safe pushes, and decrypts and
verifies our encrypted replies (msg_signature and AppID trailer). Prints one line per
check, "OK ..." or "FAIL ...", and exits 1 if any failed.
"""
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto, _get_signature
from wechatpy.utils import WeChatSigner, check_signature
from wechatpy.exceptions import InvalidSignatureException

BASE, TOKEN, AES_KEY, APPID = sys.argv[1:5]
failures = 0


def report(ok, name, detail=""):
    global failures
    if not ok:
        failures += 1
    print(("OK   " if ok else "FAIL ") + name + (": " + detail if detail else ""))


def sign(*parts):
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def request(method, path, query, body=None):
    url = BASE + path + "?" + urllib.parse.urlencode(query)
    data = body.encode("utf-8") if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "text/xml"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8")


def text_xml(ts, msg_id, content):
    return (
        "<xml><ToUserName><![CDATA[gh_interop]]></ToUserName>"
        "<FromUserName><![CDATA[oInteropUser]]></FromUserName>"
        f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
content = "interop 你好 & <ok>"

for account in ("plain", "compat", "safe"):
    path = "/wx/" + account
    ts, nonce = str(int(time.time())), str(random.randint(10**8, 10**9))
    echostr = str(random.randint(10**17, 10**18))
    # wechatpy's own check agrees with the signature we send
    signature = sign(TOKEN, ts, nonce)
    check_signature(TOKEN, signature, ts, nonce)
    status, body = request("GET", path, {"signature": signature, "timestamp": ts, "nonce": nonce, "echostr": echostr})
    report(status == 200 and body == echostr, f"{account} GET verify", f"HTTP {status} {body[:60]!r}")

    status, body = request("GET", path, {"signature": sign("wrong", ts, nonce), "timestamp": ts, "nonce": nonce, "echostr": echostr})
    report(status == 403 and body != echostr, f"{account} GET with a wrong signature is refused", f"HTTP {status}")

    msg_id = random.randint(2**60, 2**63)
    inner = text_xml(ts, msg_id, content)
    base_query = {"signature": signature, "timestamp": ts, "nonce": nonce, "openid": "oInteropUser"}

    if account in ("plain", "compat"):
        status, body = request("POST", path, base_query, inner)
        ok = status == 200 and parse_message(body).content == content
        report(ok, f"{account} POST plaintext -> plaintext reply", f"HTTP {status} {body[:80]!r}")
        if ok:
            reply = parse_message(body)
            report(reply.target == "oInteropUser" and reply.source == "gh_interop", f"{account} reply swaps To/From")

    if account in ("compat", "safe"):
        msg_id += 1
        inner = text_xml(ts, msg_id, content)
        encrypted = crypto.encrypt_message(inner, nonce, ts)
        encrypt = xmltodict.parse(encrypted)["xml"]["Encrypt"]
        query = dict(base_query, encrypt_type="aes", msg_signature=_get_signature(TOKEN, ts, nonce, encrypt))
        if account == "safe":
            post_body = f"<xml><ToUserName><![CDATA[gh_interop]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        else:
            post_body = inner.replace("</xml>", f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>")
        status, body = request("POST", path, query, post_body)
        try:
            reply_xml = xmltodict.parse(body)["xml"]
            # wechatpy verifies MsgSignature with the reply's own TimeStamp/Nonce, then the AppID
            decrypted = crypto.decrypt_message(body, reply_xml["MsgSignature"], reply_xml["TimeStamp"], reply_xml["Nonce"])
            reply = parse_message(decrypted)
            ts_ok = abs(int(reply_xml["TimeStamp"]) - time.time()) < 60
            report(status == 200 and reply.content == content and ts_ok,
                   f"{account} POST aes -> encrypted reply decrypted by wechatpy", f"content {reply.content!r}")
        except Exception as err:  # noqa: BLE001 - report any failure as FAIL
            report(False, f"{account} POST aes -> encrypted reply decrypted by wechatpy", f"HTTP {status} {err!r} {body[:120]!r}")

        bad_query = dict(query, msg_signature="0" * 40)
        status, _ = request("POST", path, bad_query, post_body)
        report(status == 403, f"{account} POST aes with a wrong msg_signature is refused", f"HTTP {status}")

    if account == "safe":
        status, _ = request("POST", path, base_query, text_xml(ts, msg_id + 7, content))
        report(status == 403, "safe POST plaintext is refused", f"HTTP {status}")

print(f"{failures} failed")
sys.exit(1 if failures else 0)
