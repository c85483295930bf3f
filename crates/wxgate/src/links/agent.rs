//! Who is visiting, from the User-Agent alone: inside WeChat on a phone, WeCom, a
//! mobile browser, WeChat for Windows or Mac, or a desktop browser. Pure and bounded:
//! the header is hostile, so anything past [`MAX_AGENT_BYTES`] is refused before this.

/// The longest User-Agent read, bytes; a longer one is refused with 400.
pub const MAX_AGENT_BYTES: usize = 1024;

/// The classes of visitor, each answered its own way (see [`Visitor::answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visitor {
    /// WeChat on a phone (`MicroMessenger`, no `wxwork`): a scheme does not open from
    /// inside WeChat, a URL Link does.
    WeChatMobile,
    /// WeCom's browser on a phone (`wxwork`): not WeChat, so it is sent like a mobile
    /// browser (the scheme hands over to WeChat, the URL Link is the fallback).
    WeComMobile,
    /// A phone's browser: the scheme or the URL Link.
    MobileBrowser,
    /// WeChat for Windows or Mac (`WindowsWechat`, `MacWechat`, or `MicroMessenger` on a
    /// desktop system): a code to scan with the phone.
    WeChatDesktop,
    /// WeCom on a desktop: a code to scan.
    WeComDesktop,
    /// Any other browser, or no User-Agent: a code to scan.
    Desktop,
}

/// What a class of visitor gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A 302 to the URL Link.
    RedirectToLink,
    /// By the link's `prefer`: a 302 to the URL Link, or a page that tries the scheme
    /// and falls back to the URL Link.
    Mobile,
    /// A page with a QR code of the URL Link and the link as text.
    Desktop,
}

impl Visitor {
    /// The class of a User-Agent (`None`: no header, or not visible ASCII).
    pub fn classify(agent: Option<&str>) -> Visitor {
        let Some(agent) = agent else {
            return Visitor::Desktop;
        };
        let agent = agent.to_ascii_lowercase();
        let has = |needle: &str| agent.contains(needle);
        let wecom = has("wxwork");
        let wechat = has("micromessenger");
        let desktop_system = has("windows nt") || has("macintosh") || has("x11;");
        let mobile = [
            "iphone",
            "ipad",
            "ipod",
            "android",
            "mobile",
            "harmonyos",
            "openharmony",
        ]
        .iter()
        .any(|m| has(m))
            && !has("windowswechat")
            && !has("macwechat");
        match (wecom, wechat, mobile) {
            (true, _, true) => Visitor::WeComMobile,
            (true, _, false) => Visitor::WeComDesktop,
            (false, true, true) => Visitor::WeChatMobile,
            (false, true, false) if desktop_system || has("wechat") => Visitor::WeChatDesktop,
            (false, true, false) => Visitor::WeChatMobile,
            (false, false, true) => Visitor::MobileBrowser,
            (false, false, false) => Visitor::Desktop,
        }
    }

    /// What this class gets.
    pub fn answer(self) -> Answer {
        match self {
            Visitor::WeChatMobile => Answer::RedirectToLink,
            Visitor::WeComMobile | Visitor::MobileBrowser => Answer::Mobile,
            Visitor::WeChatDesktop | Visitor::WeComDesktop | Visitor::Desktop => Answer::Desktop,
        }
    }

    /// A short name for logs and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Visitor::WeChatMobile => "wechat_mobile",
            Visitor::WeComMobile => "wecom_mobile",
            Visitor::MobileBrowser => "mobile_browser",
            Visitor::WeChatDesktop => "wechat_desktop",
            Visitor::WeComDesktop => "wecom_desktop",
            Visitor::Desktop => "desktop",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User-Agents as the clients send them.
    pub const AGENTS: [(&str, Visitor); 9] = [
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2c) NetType/WIFI Language/zh_CN", Visitor::WeChatMobile),
        ("Mozilla/5.0 (Linux; Android 13; V2055A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MMWEBID/2247 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64", Visitor::WeChatMobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.16 MicroMessenger/7.0.1 Language/zh ColorScheme/Light", Visitor::WeComMobile),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1", Visitor::MobileBrowser),
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", Visitor::MobileBrowser),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090819) XWEB/8519 Flue", Visitor::WeChatDesktop),
        ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.7(0x13080710) Safari/605.1.15 NetType/WIFI", Visitor::WeChatDesktop),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.0.0 Safari/537.36 wxwork/4.1.20 (MicroMessenger/6.2) WindowsWechat MailPlugin_Electron WeMail embeddisk", Visitor::WeComDesktop),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", Visitor::Desktop),
    ];

    #[test]
    fn each_client_is_classified() {
        for (agent, visitor) in AGENTS {
            assert_eq!(Visitor::classify(Some(agent)), visitor, "{agent}");
        }
        assert_eq!(Visitor::classify(None), Visitor::Desktop);
        assert_eq!(Visitor::classify(Some("")), Visitor::Desktop);
    }
}
