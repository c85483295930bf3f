//! The link service's test fixtures (`tests/links.rs`, `tests/links_tools.rs`): an
//! emulator with its own AppID, a mini-program with five links, User-Agents as clients
//! send them, a visit without following redirects, and a QR code read from a PNG.

use std::net::SocketAddr;

use wxgate_emu::{App, Emulator, EmulatorConfig};

use super::{APP_SECRET, KEY, TOKEN};

pub const ADMIN: &str = "admin-token-for-links-0123456789";
/// An AppID of the link tests' own, so their keys in the shared Redis are theirs.
pub const APP_ID: &str = "wx7e1c5a3b9d2f4086";

pub const WECHAT_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.44(0x18002c2c) NetType/WIFI Language/zh_CN";
pub const WECHAT_ANDROID: &str = "Mozilla/5.0 (Linux; Android 13; V2055A Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/111.0.5563.116 Mobile Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64 Weixin NetType/WIFI";
pub const WECOM_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 wxwork/4.1.16 MicroMessenger/7.0.1 Language/zh";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
pub const WECHAT_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat(0x63090819)";
pub const WECHAT_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) MicroMessenger/6.8.0(0x16080000) MacWechat/3.8.7(0x13080710) Safari/605.1.15 NetType/WIFI";
pub const WECOM_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/107.0.0.0 Safari/537.36 wxwork/4.1.20 (MicroMessenger/6.2) WindowsWechat";
pub const CHROME_DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

pub async fn emulator(quota: u32) -> (Emulator, String) {
    let config = EmulatorConfig {
        link_daily_quota: quota,
        ..EmulatorConfig::with_app(App::new(APP_ID, APP_SECRET))
    };
    let emu = Emulator::new(config);
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

/// A mini-program with five links: the URL Link first, the scheme first, the plain
/// scheme first, one that falls back to the plain scheme, and one that also shows the
/// mini-program code.
pub fn config(api_base: &str, top: &str) -> String {
    format!(
        "admin_token = \"{ADMIN}\"\napi_base = \"{api_base}\"\n{top}\n\
         [[account]]\nname = \"mini\"\nkind = \"miniprogram\"\napp_id = \"{APP_ID}\"\napp_secret = \"{APP_SECRET}\"\n\
         token = \"{TOKEN}\"\nencoding_aes_key = \"{KEY}\"\nmode = \"safe\"\n\
         [[account.link]]\nname = \"sale\"\npath = \"pages/sale/index\"\nquery = \"from=sms\"\n\
         [[account.link]]\nname = \"scheme\"\npath = \"pages/sale/index\"\nprefer = \"scheme\"\n\
         [[account.link]]\nname = \"plain\"\npath = \"pages/index/index\"\nquery = \"a=1\"\nprefer = \"plain_scheme\"\nenv_version = \"trial\"\n\
         [[account.link]]\nname = \"fallback\"\npath = \"pages/index/index\"\nplain_fallback = true\n\
         [[account.link]]\nname = \"coded\"\npath = \"pages/index/index\"\nmini_program_code = true\n"
    )
}

pub fn client() -> reqwest::Client {
    wxgate_client::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Status, Location and body of a visit with `agent` (none when empty).
pub async fn visit(base: &str, path: &str, agent: &str) -> (u16, String, String) {
    let mut request = client().get(format!("{base}{path}"));
    if !agent.is_empty() {
        request = request.header("user-agent", agent);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let location = (response.headers().get("location"))
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, response.text().await.unwrap())
}

/// The one QR code in a PNG screenshot.
pub fn read_qr(png_bytes: &[u8]) -> String {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let grey = |x: usize, y: usize| {
        let at = (y * w + x) * channels;
        let rgb = &pixels[at..at + channels.min(3)];
        (rgb.iter().map(|&v| u32::from(v)).sum::<u32>() / rgb.len() as u32) as u8
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, grey);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the screenshot");
    grids[0].decode().unwrap().1
}
