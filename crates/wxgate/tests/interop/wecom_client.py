"""WeCom's side, with wechatpy.enterprise doing the crypto: verifies a wxgate WeCom
account's URL (encrypted echostr, msg_signature), pushes an encrypted text with its
AgentID, and opens the encrypted reply. Prints one OK/FAIL line per check.

Usage: wecom_client.py BASE_URL TOKEN ENCODING_AES_KEY CORP_ID
"""
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto

base, token, key, corp_id = sys.argv[1:5]
crypto = WeChatCrypto(token, key, corp_id)
url = base + "/wx/corp"
failed = 0


def check(name, condition, detail=""):
    global failed
    if condition:
        print("OK  ", name)
    else:
        failed += 1
        print("FAIL", name, detail)


def call(query, body=None):
    request = urllib.request.Request(url + "?" + urllib.parse.urlencode(query), data=body)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sealed(plain, nonce, timestamp):
    envelope = xmltodict.parse(crypto.encrypt_message(plain, nonce, timestamp))["xml"]
    return envelope["Encrypt"], envelope["MsgSignature"]


timestamp = str(int(time.time()))
nonce = str(random.randint(10**8, 10**9))

# Verification: the echostr is encrypted, and the answer is its plaintext.
echo = str(random.randint(10**17, 10**18))
encrypt, signature = sealed(echo, nonce, timestamp)
status, body = call({"msg_signature": signature, "timestamp": timestamp, "nonce": nonce, "echostr": encrypt})
check("verification answers the decrypted echostr", (status, body) == (200, echo), (status, body))
check("wechatpy agrees on the signature", crypto.check_signature(signature, timestamp, nonce, encrypt) == echo)
status, body = call({"msg_signature": "0" * 40, "timestamp": timestamp, "nonce": nonce, "echostr": encrypt})
check("a forged verification is refused", status == 403 and echo not in body, (status, body))

# A text push with its AgentID, and the encrypted reply.
msg_id = random.randint(1 << 60, 1 << 62)
message = (
    f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
    f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello wecom]]></Content>"
    f"<MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>"
)
encrypt, signature = sealed(message, nonce, timestamp)
push = (
    f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt>"
    f"<AgentID><![CDATA[1000002]]></AgentID></xml>"
).encode()
status, body = call({"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}, push)
check("the push is answered 200", status == 200, (status, body))
reply = xmltodict.parse(body)["xml"] if status == 200 else {}
try:
    plain = crypto.decrypt_message(body, reply.get("MsgSignature"), reply.get("TimeStamp"), reply.get("Nonce"))
except Exception as error:  # noqa: BLE001 - reported as a failed check
    plain = f"cannot open: {error!r}"
check("wechatpy opens the reply with the CorpID", "echo hello wecom" in plain, plain)
check("the reply goes back to the sender", "<ToUserName><![CDATA[zhangsan]]></ToUserName>" in plain, plain)
status, body = call({"msg_signature": "0" * 40, "timestamp": timestamp, "nonce": nonce}, push)
check("a forged msg_signature is refused", status == 403, (status, body))

print(f"{failed} failed")
sys.exit(1 if failed else 0)
