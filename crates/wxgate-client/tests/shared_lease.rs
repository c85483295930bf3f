//! Several centers on one shared store, as several wxgate instances on one Redis: the
//! refresh lease makes one of them fetch, and the others use its result.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wxgate_client::credential::StoreFuture;
use wxgate_client::{
    AccountSecrets, CenterConfig, Client, Credential, CredentialCenter, CredentialKind,
    CredentialStore, Fence, StoreError,
};
use wxgate_emu::{App, Emulator, EmulatorConfig};

const APP_ID: &str = "wx1234567890abcdef";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn emulator() -> (Emulator, String) {
    let emu = Emulator::new(EmulatorConfig::with_app(App::new(APP_ID, SECRET)));
    let (addr, _task) = emu
        .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    (emu, format!("http://{addr}"))
}

fn center(base: &str, store: Arc<dyn CredentialStore>) -> Arc<CredentialCenter> {
    CredentialCenter::new(
        Client::new(base),
        store,
        CenterConfig::default(),
        vec![AccountSecrets {
            name: "main".into(),
            app_id: APP_ID.into(),
            secret: SECRET.into(),
            source: wxgate_client::TokenSource::WeChat,
        }],
    )
}

#[derive(Debug, Default)]
struct Shared {
    values: HashMap<String, Credential>,
    /// The lease's holder, while held.
    holder: Option<Fence>,
    newest: u64,
    /// Writes made under a lease that was no longer held.
    late_writes: u32,
}

/// A shared store with the Redis store's rules (one lease holder at a time, fences
/// increasing, a write under a superseded lease refused, a write without a lease
/// skipped while the lease is held), in memory. Lease expiry is left out.
#[derive(Debug, Default)]
struct SharedStore(Mutex<Shared>);

impl SharedStore {
    fn state(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.0.lock().unwrap()
    }
}

impl CredentialStore for SharedStore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        let value = self.state().values.get(key).cloned();
        Box::pin(async move { Ok(value) })
    }
    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        lease: Option<Fence>,
    ) -> StoreFuture<'a, ()> {
        let mut state = self.state();
        let result = match lease {
            Some(fence) if fence.get() < state.newest => Err(StoreError::Superseded { fence }),
            None if state.holder.is_some() => Ok(()),
            _ => {
                if lease.is_some() && state.holder != lease {
                    state.late_writes += 1;
                }
                state.values.insert(key.to_owned(), credential.clone());
                Ok(())
            }
        };
        Box::pin(async move { result })
    }
    fn try_lock<'a>(&'a self, _key: &'a str, _ttl: Duration) -> StoreFuture<'a, Option<Fence>> {
        let mut state = self.state();
        let granted = state.holder.is_none().then(|| {
            state.newest += 1;
            Fence::new(state.newest)
        });
        if granted.is_some() {
            state.holder = granted;
        }
        Box::pin(async move { Ok(granted) })
    }
    fn unlock<'a>(&'a self, _key: &'a str, fence: Fence) -> StoreFuture<'a, ()> {
        let mut state = self.state();
        if state.holder == Some(fence) {
            state.holder = None;
        }
        Box::pin(async { Ok(()) })
    }
    fn name(&self) -> &'static str {
        "shared"
    }
    fn shared(&self) -> bool {
        true
    }
}

type Hook = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One instance's view of the shared store: its first read is answered with what the
/// store held before `hook` (another instance's whole refresh) ran.
struct ReadsBefore {
    inner: Arc<SharedStore>,
    hook: Mutex<Option<Hook>>,
}

impl CredentialStore for ReadsBefore {
    fn load<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Credential>> {
        Box::pin(async move {
            let before = self.inner.load(key).await;
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook.await;
            }
            before
        })
    }
    fn save<'a>(
        &'a self,
        key: &'a str,
        credential: &'a Credential,
        lease: Option<Fence>,
    ) -> StoreFuture<'a, ()> {
        self.inner.save(key, credential, lease)
    }
    fn try_lock<'a>(&'a self, key: &'a str, ttl: Duration) -> StoreFuture<'a, Option<Fence>> {
        self.inner.try_lock(key, ttl)
    }
    fn unlock<'a>(&'a self, key: &'a str, fence: Fence) -> StoreFuture<'a, ()> {
        self.inner.unlock(key, fence)
    }
    fn name(&self) -> &'static str {
        "shared"
    }
    fn shared(&self) -> bool {
        true
    }
}

/// Instance B reads the store (nothing there), then instance A refreshes, stores and
/// releases the lease, and only then does B take the lease: B finds A's token under
/// the lease instead of fetching a second one.
#[tokio::test]
async fn a_lease_taken_after_another_refresh_finds_its_token() {
    let (emu, base) = emulator().await;
    let shared = Arc::new(SharedStore::default());
    let a = center(&base, shared.clone());
    let refresh_a: Hook = Box::pin({
        let a = Arc::clone(&a);
        async move {
            a.get("main", CredentialKind::AccessToken).await.unwrap();
        }
    });
    let b = center(
        &base,
        Arc::new(ReadsBefore {
            inner: shared.clone(),
            hook: Mutex::new(Some(refresh_a)),
        }),
    );
    let token_b = b.get("main", CredentialKind::AccessToken).await.unwrap();
    let token_a = a.cached("main", CredentialKind::AccessToken).unwrap();
    assert_eq!(token_b.value, token_a.value);
    assert_eq!(
        emu.count("/cgi-bin/stable_token"),
        1,
        "one fetch for both instances"
    );
    assert_eq!(shared.state().holder, None, "B released the lease");
}

/// The lease covers the store write: a refresh stores its token before it releases
/// the lease, so nobody can take the lease while the store still holds the old token.
#[tokio::test]
async fn the_lease_is_held_until_the_token_is_stored() {
    let (emu, base) = emulator().await;
    let shared = Arc::new(SharedStore::default());
    let a = center(&base, shared.clone());
    let token = a.get("main", CredentialKind::AccessToken).await.unwrap();
    let state = shared.state();
    assert_eq!(state.late_writes, 0, "stored after the lease was released");
    assert_eq!(state.holder, None, "released");
    assert_eq!(
        state.values.values().next().map(|c| c.value.as_str()),
        Some(token.value.as_str())
    );
    assert_eq!(emu.count("/cgi-bin/stable_token"), 1);
}
