-- wrk script: plaintext pushes with a fresh MsgId on every request (so the inbox sees
-- new messages, not WeChat retries). The signature covers token, timestamp and nonce
-- only, so one signed query serves every body. Set QUERY (the signed query string)
-- and ACCOUNT_PATH in the environment; MSG_PREFIX (digits) keeps the MsgIds of
-- several wrk processes apart.
local counter = 0
local prefix = os.getenv("MSG_PREFIX") or ""
local query = os.getenv("QUERY")
local path = os.getenv("ACCOUNT_PATH")
local ts = os.getenv("TS")
request = function()
  counter = counter + 1
  local body = "<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[oBenchUser]]></FromUserName>"
    .. "<CreateTime>" .. ts .. "</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hello]]></Content>"
    .. "<MsgId>" .. prefix .. tostring(os.time() * 100000 + counter) .. tostring(math.random(1000, 9999)) .. "</MsgId></xml>"
  return wrk.format("POST", path .. "?" .. query, { ["Content-Type"] = "text/xml" }, body)
end
