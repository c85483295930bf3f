"""The README's Python verification of wxgate's identity token, run by the tests.
usage: verify_identity.py TOKEN KEY  -> prints the openid, or "invalid"."""
import base64, hashlib, hmac, json, sys, time


def verify_identity(token: str, key: str):
    payload, _, mac = token.rpartition(".")
    expected = base64.urlsafe_b64encode(hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest()).rstrip(b"=")
    if not payload.startswith("v1.") or not hmac.compare_digest(expected, mac.encode()):
        return None
    body = payload[3:]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims if claims["exp"] > time.time() else None


claims = verify_identity(sys.argv[1], sys.argv[2])
print(claims["openid"] if claims else "invalid")
