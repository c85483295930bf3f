//! The credential center's hot path: a cached lookup (lock-free), and a lookup through
//! `get` (what every admin API call does), with the token already fetched from the
//! emulator. Plus the JS-SDK signature the jssdk_config endpoint computes.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use wxgate_client::{
    AccountSecrets, CenterConfig, Client, CredentialCenter, CredentialKind, MemoryStore,
};
use wxgate_emu::{App, Emulator, EmulatorConfig};
use wxgate_proto::signature::wx_config;

fn lookups(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let center = runtime.block_on(async {
        let emulator = Emulator::new(EmulatorConfig::with_app(App::new(
            "wx1234567890abcdef",
            "0123456789abcdef0123456789abcdef",
        )));
        let (addr, _task) = emulator
            .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        std::mem::forget(_task);
        let center = CredentialCenter::new(
            Client::new(&format!("http://{addr}")),
            Arc::new(MemoryStore::default()),
            CenterConfig::default(),
            vec![AccountSecrets {
                name: "main".into(),
                app_id: "wx1234567890abcdef".into(),
                secret: "0123456789abcdef0123456789abcdef".into(),
                source: wxgate_client::TokenSource::WeChat,
            }],
        );
        center
            .get("main", CredentialKind::AccessToken)
            .await
            .unwrap();
        center
    });
    c.bench_function("cached access_token lookup (lock-free)", |b| {
        b.iter(|| {
            center
                .cached(black_box("main"), CredentialKind::AccessToken)
                .unwrap()
        })
    });
    c.bench_function("get access_token (cached, async)", |b| {
        b.iter(|| {
            runtime
                .block_on(center.get(black_box("main"), CredentialKind::AccessToken))
                .unwrap()
        })
    });
    c.bench_function("wx.config signature", |b| {
        b.iter(|| {
            wx_config(
                "wx1234567890abcdef",
                black_box("kgt8ON7yVITDhtdwci0qeT1kX0mCx0zAqN6w-sI3W7Jp2Fb4Lw9yR5sV8cP1aD3eG"),
                "Wm3WZYTPz0wzccnW",
                1718020002,
                black_box("https://h5.example.org/app/?tab=cart#/checkout"),
            )
        })
    });
}

criterion_group!(benches, lookups);
criterion_main!(benches);
