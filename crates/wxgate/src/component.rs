//! Open Platform third-party platforms (开放平台 第三方平台, `[[component]]`): what
//! their 授权事件接收URL receives, checked and stored before it is acknowledged.
//!
//! * [`Component`]: one platform, with the callback protocol of an account whose
//!   AppID is the platform's (every push to a platform is encrypted with its key and
//!   carries its AppID as the trailer), always in safe mode.
//! * [`Component::receive`]: a notify, from its admitted query and body to what was
//!   stored: `msg_signature`, decryption, the notify's own `AppId`, then the durable
//!   write of the ticket or the authorization event, then the ticket in the credential
//!   center (the embedded database, or Redis shared by the instances); for
//!   `authorized` and `updateauthorized`, the code exchanged (`api_query_auth`) and the
//!   authorizer's tokens stored; for `unauthorized`, the authorizer released. Only then
//!   does the route answer `success`.
//! * `store`: [`ComponentStore`], the durable record in the process's database: the
//!   latest ticket per platform, and each authorizer's latest event.
//! * `error`: [`NotifyError`], which tells the HTTP layer what the refusal is.

use secrecy::SecretString;
use subtle::ConstantTimeEq;
use wxgate_client::CredentialCenter;
use wxgate_proto::component::{Info, Notify};
use wxgate_proto::console::Mode;
use wxgate_proto::Format;

use crate::config::{AccountConfig, AccountKind, ComponentConfig};
use crate::gateway::account::{Account, CallbackQuery, DecryptFailure, Refusal};

mod error;
pub mod release;
mod store;

pub use error::NotifyError;
pub use store::{AuthorizerEvent, ComponentStore, StoredTicket};

/// One third-party platform.
#[derive(Debug)]
pub struct Component {
    /// Its configuration.
    pub config: ComponentConfig,
    /// The callback protocol with the platform's Token, key and AppID.
    pub gateway: Account,
    /// Each authorizer's messages: the platform's protocol, rules and forward, under
    /// the authorizer's name (`open/{name}/{appid}`), made on first use.
    messages: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Account>>>,
}

/// What a notify was and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The InfoType.
    pub info_type: String,
    /// For a ticket: whether it was stored, repeated or older than the stored one.
    pub ticket: Option<wxgate_client::credential::TicketOffer>,
}

impl Component {
    /// A platform from its validated configuration.
    pub fn new(config: ComponentConfig) -> Component {
        let gateway = Account::new(Self::account_config(&config, config.name.clone(), None));
        Component {
            config,
            gateway,
            messages: Default::default(),
        }
    }

    /// An account with the platform's AppID (the trailer), Token and keys, in safe
    /// mode, with the platform's rules and forward, or the authorizer's own
    /// (`[[component.authorizer]]`) where it has them.
    fn account_config(
        config: &ComponentConfig,
        name: String,
        authorizer: Option<&str>,
    ) -> AccountConfig {
        let own =
            authorizer.and_then(|app_id| config.authorizers.iter().find(|a| a.app_id == app_id));
        let rules = match own {
            Some(own) if !own.rules.is_empty() => own.rules.clone(),
            _ => config.rules.clone(),
        };
        let forward = (own.and_then(|own| own.forward.clone())).or_else(|| config.forward.clone());
        let kind = own.map_or(AccountKind::OfficialAccount, |own| own.kind);
        AccountConfig {
            name,
            app_id: config.app_id.clone(),
            app_secret: SecretString::from(String::new()),
            agent_id: None,
            token: config.token.clone(),
            aes_key: Some(config.aes_key.clone()),
            previous_aes_key: config.previous_aes_key.clone(),
            mode: Mode::Safe,
            timestamp_window_s: config.timestamp_window_s,
            dedup: true,
            rules,
            oauth: None,
            forward,
            kind,
            data_format: Format::Xml,
            links: Vec::new(),
        }
    }

    /// The account that handles the authorizer `app_id`'s messages (made once). The
    /// caller bounds the AppIDs: authorizers the credential center holds, and WeChat's
    /// release-test accounts.
    pub fn messages(&self, app_id: &str) -> std::sync::Arc<Account> {
        let mut held = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        let name = wxgate_client::credential::authorizer_name(&self.center_name(), app_id);
        held.entry(app_id.to_owned())
            .or_insert_with(|| {
                let config = Self::account_config(&self.config, name, Some(app_id));
                std::sync::Arc::new(Account::new(config))
            })
            .clone()
    }

    /// The platform's name in the credential center: `open/{name}`, which no account
    /// name can be (a name has no '/'), so `/api/accounts/…` never reaches it.
    pub fn center_name(&self) -> String {
        center_name(&self.config.name)
    }

    /// Checks a notify that [`Account::admit`] let in (it must be encrypted), opens it,
    /// and stores what it says: durably in `store` (when the process has a database),
    /// then the ticket in the credential center. Returns once everything is stored.
    ///
    /// # Errors
    /// [`NotifyError`]: a refusal of the request, a notify for another platform, or a
    /// store that failed (retrying helps: WeChat pushes again).
    pub async fn receive(
        &self,
        query: &CallbackQuery,
        body: &str,
        center: &CredentialCenter,
        store: Option<&ComponentStore>,
    ) -> Result<Received, NotifyError> {
        let format = Format::detect(body).map_err(Refusal::Malformed)?;
        let (plain, _) = self.gateway.unseal(query, body, format)?;
        // The parser's error may quote the decrypted text: only the kind is kept.
        let notify = Notify::parse(&plain).map_err(|_| Refusal::Decrypt(DecryptFailure::Xml))?;
        let ours = notify
            .app_id
            .as_bytes()
            .ct_eq(self.config.app_id.as_bytes());
        if !bool::from(ours) {
            return Err(NotifyError::OtherComponent {
                named: wxgate_proto::crypto::looks_like_app_id(&notify.app_id)
                    .then(|| notify.app_id.clone()),
            });
        }
        if let Some(store) = store {
            store.record(&self.config.app_id, &notify).await?;
        }
        let platform = self.center_name();
        let ticket = match &notify.info {
            Info::VerifyTicket(ticket) => Some(
                center
                    .offer_verify_ticket(&platform, ticket, notify.create_time)
                    .await?,
            ),
            // The code is exchanged and the authorizer's tokens stored before
            // `success`: a new authorization replaces the old refresh token.
            Info::Authorized(auth) | Info::UpdateAuthorized(auth) => {
                let exchanged = center.authorize(&platform, &auth.authorization_code).await;
                match exchanged {
                    Ok(_) => {}
                    // The same notify again (WeChat repeats pushes; a replay within the
                    // timestamp window): its code was exchanged by the first one. (A code
                    // that expired unexchanged while the authorizer is held from an
                    // earlier authorization looks the same; WeChat's 61010 does not
                    // tell the two apart.)
                    Err(err)
                        if err.errcode() == Some(61010) && {
                            let held = center.authorizers(&platform);
                            held.contains(&auth.authorizer_app_id)
                        } => {}
                    Err(err) => return Err(err.into()),
                }
                None
            }
            Info::Unauthorized { authorizer_app_id } => {
                center
                    .release_authorizer(&platform, authorizer_app_id)
                    .await?;
                None
            }
            Info::Other(_) => None,
        };
        Ok(Received {
            info_type: notify.info.info_type().to_owned(),
            ticket,
        })
    }
}

/// The credential center's name of the platform `name`: `open/{name}`.
pub fn center_name(name: &str) -> String {
    format!("open/{name}")
}
